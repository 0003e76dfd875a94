import AudioSocket
import CampaignCore
import Conversation
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Speech

/// The conversation engine as a long-running service (`cex engine serve`): the AudioSocket
/// server hosting `ConversationEngine` with the configured providers (offline by default).
///
/// On graceful shutdown it stops accepting calls at once, lets live calls go on for `drain`,
/// then has each say a short goodbye and hang up; it returns when every call has ended and
/// its record is written.
public struct EngineService: Service, CustomStringConvertible {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 9092
        /// Calls talking at once (each holds a recogniser decoder, about 90 MB); more are refused
        /// at accept with a hang-up frame.
        public var maximumCalls = 4
        /// How long live calls may go on after a shutdown request.
        public var drain: Duration = .seconds(30)
        /// Where call records go, one JSON file per call.
        public var records = URL(fileURLWithPath: "records")
        /// Templates whose fixed lines are synthesised at start, so even the first call's disclosure starts at once.
        public var templates: [PitchTemplate] = []
        /// Counts and measures the calls (served by `MetricsServer`).
        public var metrics: EngineMetrics?
        /// Speech and language providers (offline and scripted by default); keys come from `environment`.
        public var providers = ProviderSettings()
        /// Where the provider keys are read (the process environment); never printed.
        public var environment = ProcessInfo.processInfo.environment
        public var onListening: (@Sendable (SocketAddress) -> Void)?

        public init() {}
    }

    public let configuration: Configuration
    public let engine: ConversationEngine
    /// The agent's voice, with the lines it says on every call kept.
    public let synthesizer: CachingSynthesizer
    /// The offline recogniser: the one in use, or the fallback of a cloud one.
    public let recognizer: PocketSphinxRecognizer
    public let providers: EngineProviders
    private let logger: Logger

    /// `sink` keeps the call records; JSON files in `configuration.records` when nil. Fails when
    /// a cloud provider is chosen and its key is not in the environment.
    public init(configuration: Configuration, resolver: any CallResolver, sink: (any CallRecordSink)? = nil, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: configuration.maximumCalls))
        let offlineVoice = CachingSynthesizer(EspeakSynthesizer())
        self.providers = try EngineProviders.make(
            configuration.providers, environment: configuration.environment, offlineRecognizer: self.recognizer, offlineSynthesizer: offlineVoice,
            logger: logger)
        self.synthesizer = self.providers.synthesizer as? CachingSynthesizer ?? CachingSynthesizer(self.providers.synthesizer)
        self.engine = ConversationEngine(
            resolver: resolver,
            providers: ConversationProviders(
                recognizer: self.providers.recognizer,
                synthesizer: self.synthesizer,
                sink: sink ?? JSONFileRecordSink(directory: configuration.records),
                observer: configuration.metrics,
                policy: self.providers.policy,
                fallbackRecognizer: self.providers.fallbackRecognizer,
                fallbackSynthesizer: self.providers.fallbackSynthesizer,
                analyzer: self.providers.analyzer
            ),
            logger: logger
        )
    }

    /// What logs show of the service (ServiceLifecycle logs every service): the address and
    /// the providers, never the configuration's environment, which holds the keys.
    public var description: String { "EngineService(\(self.configuration.host):\(self.configuration.port), \(self.providers.summary))" }

    public func run() async throws {
        var serverConfiguration = AudioSocketServer<ConversationEngine>.Configuration(
            host: self.configuration.host, port: self.configuration.port, onListening: self.configuration.onListening
        )
        serverConfiguration.maximumCalls = self.configuration.maximumCalls
        if let metrics = self.configuration.metrics {
            serverConfiguration.onFrameLateness = { metrics.frameLateness($0) }
            serverConfiguration.onRefusedAtLimit = { metrics.callRefusedAtLimit() }
        }
        let server = AudioSocketServer(
            configuration: serverConfiguration,
            application: self.engine,
            logger: self.logger
        )
        // The first call should not wait for a model to load or the disclosure to be synthesised.
        do {
            try await self.recognizer.prepare()
        } catch {
            self.logger.error("speech recognition unavailable", metadata: ["error": "\(error)"])
        }
        self.logger.info("engine providers", metadata: ["providers": "\(self.providers.summary)"])
        await self.synthesizer.prepare(self.configuration.templates.flatMap(\.fixedOpeningSpeech))
        let engine = self.engine
        let drain = self.configuration.drain
        let logger = self.logger
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await server.run()
                return true
            }
            group.addTask {
                // Waits for a shutdown request; cancelled when the server ends first.
                try await gracefulShutdown()
                logger.notice("shutting down: no new calls", metadata: ["engine.live_calls": "\(engine.liveCalls.count)"])
                try await Task.sleep(for: drain)
                logger.notice("ending live calls", metadata: ["engine.live_calls": "\(engine.liveCalls.count)"])
                engine.liveCalls.endAll()
                return false
            }
            // Until the server is done: the last calls are still saying goodbye after `endAll`.
            while let serverEnded = try await group.next(), !serverEnded {}
            group.cancelAll()
        }
        self.providers.close()
    }
}
