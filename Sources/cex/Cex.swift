import ArgumentParser
import Foundation
import Logging

/// The cex command line: thin commands over CampaignApp.
@main
struct Cex: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cex",
        abstract: "Outbound AI sales-call campaigns on Asterisk.",
        discussion: """
            cex originates calls through the Asterisk Manager Interface and talks with each \
            answered call over AudioSocket. Secrets come from the environment or secret files only.
            """,
        version: Cex.version,
        subcommands: [Demo.self, CampaignCommand.self, Leads.self, DNC.self, Template.self, Report.self, Engine.self, PBX.self, Version.self]
    )

    /// Every file cex makes (the store, its lock, call records, reports, rejects) holds names,
    /// numbers or transcripts: readable by its owner only (0600, folders 0700), whatever the umask.
    ///
    /// Exit codes (sysexits): 0 done, 1 failed, 64 usage, 65 bad data, 69 Asterisk unreachable,
    /// 75 try later, 130 interrupted by SIGINT.
    static func main() async {
        umask(0o077)
        do {
            var command = try self.parseAsRoot(nil)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data("Error: \(failure)\n".utf8))
            Foundation.exit(failure.exitCode)
        } catch {
            self.exit(withError: error)
        }
    }
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    func bootstrapLogging() {
        let level = self.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler(label: label, stream: Terminal.LogStream(terminal: .shared))
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension Cex {
    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the cex version.")

        func run() {
            say("cex \(Cex.version)")
        }
    }
}
