import ArgumentParser
import AsteriskManager
import CampaignApp
import Foundation
import Logging
import PBXSimulator
import ServiceLifecycle
import UnixSignals

extension Cex {
    struct PBX: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pbx",
            abstract: "The built-in Asterisk stand-in.",
            subcommands: [Simulate.self]
        )
    }
}

/// `host:port`.
struct HostPort: ExpressibleByArgument, Sendable, Equatable {
    var host: String
    var port: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
            (0...65535).contains(port), colon != argument.startIndex
        else { return nil }
        self.host = String(argument[..<colon])
        self.port = port
    }

    /// How `--help` prints a default: `127.0.0.1:9092`.
    var defaultValueDescription: String { "\(self.host):\(self.port)" }
}

extension Cex.PBX {
    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the Asterisk stand-in: an AMI server whose answered calls connect to an AudioSocket engine.",
            discussion: """
                Behaves as Asterisk 22 does on the wire (PROTOCOLS.md §1.8, §2.5). Each dialled number \
                gets a behaviour: answer, busy, no-answer, congestion, unallocated, rejected, voicemail \
                or not-up. Answered calls run AudioSocket(${CEX_CALL_ID},ENGINE) in the given context.

                Example:
                  CEX_AMI_SECRET=s3cret cex pbx simulate --engine 127.0.0.1:9092 \\
                    --number +15550100002=busy --number +15550100004=no-answer
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Where the AMI server listens (host:port).")
        var ami = HostPort(argument: "127.0.0.1:5038")!

        @Option(help: "The AMI username to accept.")
        var username = "cex"

        @Option(help: "Environment variable holding the AMI secret.")
        var secretEnv = "CEX_AMI_SECRET"

        @Option(help: "File holding the AMI secret (instead of the environment).")
        var secretFile: String?

        @Option(help: "The AudioSocket engine answered calls connect to (host:port).")
        var engine = HostPort(argument: "127.0.0.1:9092")!

        @Option(help: "The dialplan context that runs AudioSocket.")
        var context = "ai-outbound"

        @Flag(help: "Run AMD() in the context before AudioSocket (voicemail is then detected and hung up).")
        var amd = false

        @Option(help: "How long destinations ring, in milliseconds.")
        var ringMilliseconds = 1000

        @Option(name: .customLong("number"), help: "NUMBER=BEHAVIOUR for one destination (repeatable).")
        var numbers: [String] = []

        @Option(help: "Behaviour of numbers not listed.")
        var defaultBehaviour = "answer"

        @Option(help: "A 16-bit mono 8 kHz WAV that answering callees say.")
        var callerAudio: String?

        @Option(help: "Seed for random choices (event order).")
        var seed: UInt64?

        func validate() throws {
            for entry in self.numbers where !entry.contains("=") {
                throw ValidationError("--number takes NUMBER=BEHAVIOUR")
            }
        }

        func run() async throws {
            self.global.bootstrapLogging()
            let secret = try SecretSource(environment: self.secretEnv, file: self.secretFile).read()
            var line = TestAudio.tone(frequency: 330, duration: .milliseconds(600))
            if let path = self.callerAudio {
                let wav = try WAVFile(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
                guard wav.sampleRate == 8000 else { throw ValidationError("\(path): the WAV must be 8000 Hz, not \(wav.sampleRate)") }
                line = wav.samples
            }
            let script = CallerScript(steps: [.pause(.milliseconds(800), sendSilence: true), .say(line)])
            func behaviour(_ name: String) throws -> CalleeBehaviour {
                switch name {
                case "answer": return .answer(script)
                case "busy": return .busy
                case "no-answer": return .noAnswer
                case "congestion": return .congestion
                case "unallocated": return .unallocated
                case "rejected": return .rejected
                case "voicemail": return .voicemail(CallerScript(steps: [.say(line)]))
                case "not-up": return .answerNotUp
                default: throw ValidationError("unknown behaviour '\(name)'")
                }
            }
            var directory: [String: CalleeBehaviour] = [:]
            for entry in self.numbers {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                directory[parts[0]] = try behaviour(parts[1])
            }
            let logger = Logger(label: "cex.pbx")
            let pbx = SimulatedAsterisk(
                configuration: .init(
                    host: self.ami.host,
                    port: self.ami.port,
                    users: [.init(username: self.username, secret: secret)],
                    contexts: [self.context: .init(engineHost: self.engine.host, enginePort: self.engine.port, runsAMD: self.amd)],
                    directory: directory,
                    defaultBehaviour: try behaviour(self.defaultBehaviour),
                    ringTime: .milliseconds(self.ringMilliseconds),
                    seed: self.seed,
                    onListening: { address in say("simulated Asterisk: AMI on \(address)") }
                ),
                logger: logger
            )
            let group = ServiceGroup(
                configuration: .init(services: [pbx], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            try await group.run()
        }
    }
}
