import ArgumentParser
import CampaignApp
import Logging

extension Cex {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the telephony loop end to end against the built-in Asterisk stand-in.",
            discussion: """
                Starts the stand-in (AMI server and AudioSocket caller side), an AudioSocket engine \
                and the AMI client on loopback, originates one call per scripted destination (answer, \
                busy, no answer, congestion, unallocated, rejected, voicemail) and prints how each \
                ended. Needs no Asterisk, no account and no network.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "How long destinations ring, in milliseconds.")
        var ringMilliseconds = 300

        @Option(help: "Seed for the stand-in's random choices (event order).")
        var seed: UInt64 = 7

        func validate() throws {
            guard self.ringMilliseconds >= 0 else { throw ValidationError("--ring-milliseconds must not be negative") }
        }

        func run() async throws {
            self.global.bootstrapLogging()
            var options = SpineDemo.Options()
            options.ringTime = .milliseconds(self.ringMilliseconds)
            options.seed = self.seed
            let report = try await SpineDemo.run(options: options, logger: Logger(label: "cex.demo"))
            print(SpineDemo.render(report))
        }
    }
}
