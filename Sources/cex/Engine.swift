import ArgumentParser
import CampaignApp
import CampaignCore
import Conversation
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension Cex {
    struct Engine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The conversation engine.",
            subcommands: [Serve.self]
        )
    }
}

extension Cex.Engine {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the AudioSocket conversation engine alone, as a long-running service.",
            discussion: """
                Asterisk connects each answered call to this address (AudioSocket(${CEX_CALL_ID},HOST:PORT)). \
                A call is talked to only when its UUID is registered: a file CALLS/<uuid>.json with \
                {"template": NAME, "lead": {...}, "time_zone": "America/Chicago"}, the template read from \
                TEMPLATES/NAME.yaml. Any other UUID is hung up at once. Call records are written to \
                RECORDS/<uuid>.json after every turn.

                --accept-any-call is for rehearsals only: every UUID is accepted and talked to with the \
                given template and lead. It is off by default and logged loudly.

                SIGTERM or SIGINT stops accepting calls at once; live calls go on for --drain-seconds, \
                then say goodbye and hang up, and their records are flushed before exit.

                Examples:
                  cex engine serve --listen 127.0.0.1:9092 --calls /var/lib/cex/calls
                  cex engine serve --accept-any-call --template solar-assessment --lead first_name=Ana --lead city=Springfield
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Where to listen for AudioSocket connections (host:port).")
        var listen = HostPort(argument: "127.0.0.1:9092")!

        @Option(help: "Directory of registered calls (<uuid>.json).")
        var calls: String?

        @Option(help: "Directory of pitch templates.")
        var templates = "templates"

        @Option(help: "Directory call records are written to.")
        var records = "records"

        @Option(help: "Calls talking at once (each holds a speech decoder of about 90 MB).")
        var maxCalls = 4

        @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics.")
        var metrics: HostPort?

        @Option(help: "Seconds live calls may go on after a shutdown request.")
        var drainSeconds = 30

        @Flag(help: "Rehearsal mode: accept every call UUID and talk with --template and --lead.")
        var acceptAnyCall = false

        @Option(help: "Rehearsal mode: the template to talk with (default: the first in --templates).")
        var template: String?

        @Option(name: .customLong("lead"), help: "Rehearsal mode: KEY=VALUE lead data (repeatable).")
        var leadFields: [String] = []

        @Option(help: "Rehearsal mode: the callee's timezone (default: this machine's).")
        var timeZone: String?

        @Option(help: "Speech providers: offline or deepgram (DEEPGRAM_API_KEY, DEEPGRAM_STT_DOMAIN).")
        var speech = "offline"

        @Option(help: "Dialogue policy: scripted or openai (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL).")
        var language = "scripted"

        @Option(help: "The chat model for --language openai (default: OPENAI_MODEL, else gpt-4o).")
        var llmModel: String?

        func validate() throws {
            guard self.acceptAnyCall || self.calls != nil else {
                throw ValidationError("give --calls DIR, or --accept-any-call for a rehearsal")
            }
            guard !(self.acceptAnyCall && self.calls != nil) else {
                throw ValidationError("--calls and --accept-any-call exclude each other")
            }
            if !self.acceptAnyCall && (self.template != nil || !self.leadFields.isEmpty || self.timeZone != nil) {
                throw ValidationError("--template, --lead and --time-zone need --accept-any-call")
            }
            for field in self.leadFields where !field.contains("=") || field.hasPrefix("=") {
                throw ValidationError("--lead takes KEY=VALUE")
            }
            guard ProviderSettings.Speech(rawValue: self.speech) != nil else { throw ValidationError("--speech must be offline or deepgram") }
            guard ProviderSettings.Language(rawValue: self.language) != nil else { throw ValidationError("--language must be scripted or openai") }
            guard self.maxCalls > 0 else { throw ValidationError("--max-calls must be at least 1") }
            guard self.drainSeconds >= 0 else { throw ValidationError("--drain-seconds must not be negative") }
            if let zone = self.timeZone, TimeZone(identifier: zone) == nil {
                throw ValidationError("--time-zone: unknown timezone '\(zone)'")
            }
        }

        func run() async throws {
            self.global.bootstrapLogging()
            let logger = Logger(label: "cex.engine")
            let templates = URL(fileURLWithPath: self.templates)
            let resolver: any CallResolver
            var prepared: [PitchTemplate] = []
            if self.acceptAnyCall {
                let template = try self.rehearsalTemplate(in: templates)
                var lead: [String: String] = [:]
                for field in self.leadFields {
                    let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    lead[String(parts[0])] = String(parts[1])
                }
                // Render the opening now: a lead missing a variable fails here, not on the first call.
                _ = try ScriptedPolicy(template: template).start(CallContext(callID: UUID(), lead: lead, timeZone: .current, startedAt: Date()))
                logger.warning(
                    "REHEARSAL MODE: every AudioSocket call UUID is accepted and talked to; never point a live trunk here",
                    metadata: ["template": "\(template.name)"]
                )
                resolver = AnyCallResolver(template: template, lead: lead, timeZone: self.timeZone.flatMap(TimeZone.init(identifier:)) ?? .current)
                prepared = [template]
            } else {
                resolver = RegisteredCallDirectory(directory: URL(fileURLWithPath: self.calls!), templates: templates, logger: logger)
                // Every template that loads gets its fixed lines synthesised; the others are refused per call.
                prepared = Self.templateFiles(in: templates).compactMap { try? PitchTemplate.load(path: $0.path) }
            }
            var configuration = EngineService.Configuration()
            configuration.host = self.listen.host
            configuration.port = self.listen.port
            configuration.maximumCalls = self.maxCalls
            configuration.drain = .seconds(self.drainSeconds)
            configuration.records = URL(fileURLWithPath: self.records)
            configuration.templates = prepared
            configuration.providers = ProviderSettings(
                speech: ProviderSettings.Speech(rawValue: self.speech)!, language: ProviderSettings.Language(rawValue: self.language)!, llmModel: self.llmModel)
            configuration.onListening = { address in say("cex engine: AudioSocket on \(address)") }
            var services: [any Service] = []
            if let address = self.metrics {
                let metrics = EngineMetrics()
                configuration.metrics = metrics
                services.append(MetricsServer(host: address.host, port: address.port, metrics: metrics, logger: logger) { address in
                    say("cex engine: metrics on \(address), path /metrics")
                })
            }
            services.insert(try EngineService(configuration: configuration, resolver: resolver, logger: logger), at: 0)
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            try await group.run()
        }

        func rehearsalTemplate(in directory: URL) throws -> PitchTemplate {
            if let name = self.template {
                return try PitchTemplate.load(path: directory.appendingPathComponent("\(name).yaml").path)
            }
            guard let first = Self.templateFiles(in: directory).first else {
                throw ValidationError("no templates in \(directory.path); give --template or --templates")
            }
            return try PitchTemplate.load(path: first.path)
        }

        /// The `.yaml` files of a templates directory, by name.
        static func templateFiles(in directory: URL) -> [URL] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { $0.hasSuffix(".yaml") }.sorted().map { directory.appendingPathComponent($0) }
        }
    }
}
