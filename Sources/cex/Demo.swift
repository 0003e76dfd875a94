import ArgumentParser
import CampaignApp
import CampaignCore
import Conversation
import Foundation
import Logging
import Reports

extension Cex {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the demo campaign end to end against the built-in Asterisk stand-in.",
            discussion: """
                Runs campaigns/demo.yaml: 20 leads whose callees (the stand-in's personas) are interested, \
                object, ask for a callback, opt out, are busy, do not answer, or are a voicemail box. \
                The embedded engine talks with offline speech (espeak-ng, pocketsphinx); callees speak with \
                flite. Prints the funnel and writes the store and the reports to --out. Needs no Asterisk, \
                no account and no network. The demo's clock starts at 14:00 New York time, so its leads are \
                inside their calling windows whenever it runs.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The demo campaign file.") var campaign = "campaigns/demo.yaml"
        @Option(help: "Where the store and the reports go.") var out = "demo-output"

        func run() async throws {
            self.global.bootstrapLogging()
            let terminal = Terminal.shared
            guard FileManager.default.fileExists(atPath: self.campaign) else {
                throw CommandFailure(
                    "no demo campaign at \(self.campaign): run `cex demo` in the cex repository (it holds campaigns/ and templates/), or pass --campaign FILE",
                    exitCode: CommandFailure.noInput)
            }
            let result: CampaignDemo.Result
            do {
                result = try await CampaignDemo.run(
                    campaignFile: self.campaign, output: URL(fileURLWithPath: self.out), logger: Logger(label: "cex.demo"),
                    onProgress: { terminal.show($0) })
            } catch let error as CampaignFileError {
                throw CommandFailure("\(error)", exitCode: CommandFailure.badData)
            } catch let error as TemplateError {
                throw CommandFailure("\(error)", exitCode: CommandFailure.badData)
            }
            terminal.finish()
            say("demo: \(result.summary.ending)")
            say(result.funnel.line)
            for report in result.reports { say("report: \(report)") }
            say("store: \(result.store)")
        }
    }
}
