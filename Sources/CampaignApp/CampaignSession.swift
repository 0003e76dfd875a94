import AsteriskManager
import CampaignCore
import CampaignStore
import Conversation
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import UnixSignals

/// One run of a campaign, as `cex campaign start` and `cex campaign run` do it: check the
/// campaign file and template, load the DNC files, import the leads, then dial with the AMI
/// client and (when embedded) the engine, until the work is done, the window closes, the
/// campaign is paused, or a signal asks to stop.
public struct CampaignSession: Sendable {
    public var campaign: Campaign
    public var template: PitchTemplate
    public var store: CampaignStore
    public var campaignID: Int64
    public var logger: Logger

    /// Loads and checks everything that can be checked without the network. `register: false`
    /// stores nothing: the campaign keeps the id it has in the store (0 when it has none).
    public init(campaignFile: String, store: CampaignStore, logger: Logger, register: Bool = true) throws {
        self.campaign = try CampaignFile.load(path: campaignFile)
        self.template = try PitchTemplate.load(path: self.campaign.template)
        self.store = store
        self.campaignID = register ? try store.campaignID(self.campaign) : try store.existingCampaignID(self.campaign) ?? 0
        var logger = logger
        logger[metadataKey: "campaign"] = "\(self.campaign.name)"
        self.logger = logger
    }

    /// Template variables a lead must bring (the template fills company, agent_name, opt_out_key).
    public var requiredVariables: Set<String> { self.template.leadVariables }

    /// Loads the campaign's DNC files; returns how many numbers were new. Lines that are not
    /// numbers are counted, not fatal: a suppression list should suppress what it can.
    public func loadDoNotCallFiles() throws -> (added: Int, skipped: [String: [Int]]) {
        var added = 0
        var skipped: [String: [Int]] = [:]
        for file in self.campaign.dnc {
            let (numbers, bad) = try DoNotCallFile.read(path: file, defaultRegion: self.campaign.defaultCountry)
            added += try self.store.addDoNotCall(numbers, source: "file \(URL(fileURLWithPath: file).lastPathComponent)")
            if !bad.isEmpty { skipped[file] = bad }
        }
        return (added, skipped)
    }

    public func importLeads() throws -> [LeadImporter.Report] {
        try LeadImporter(store: self.store, campaignID: self.campaignID, campaign: self.campaign, requiredVariables: self.requiredVariables)
            .importAll()
    }

    public struct RunOptions: Sendable {
        public var runner = CampaignRunner.Options()
        /// Overrides the campaign's AMI address (the demo's stand-in listens on a free port).
        public var ami: (host: String, port: Int)?
        /// Overrides where the embedded engine listens.
        public var engine: (host: String, port: Int)?
        public var secret: String?
        /// Overrides the AMI keepalive interval (a stalled link is found after two of them).
        public var amiKeepalive: Duration?
        public var engineDrain: Duration = .seconds(30)
        public var onEngineListening: (@Sendable (SocketAddress) -> Void)?
        public init() {}
    }

    /// Dials until the runner stops; returns how it ended.
    public func dial(options: RunOptions = RunOptions()) async throws -> CampaignRunner.Summary {
        let secret = try options.secret
            ?? SecretSource(environment: self.campaign.ami.secretEnvironment, file: self.campaign.ami.secretFile).read()
        let ami = AMIClient(
            configuration: .init(
                host: options.ami?.host ?? self.campaign.ami.host, port: options.ami?.port ?? self.campaign.ami.port,
                username: self.campaign.ami.username, secret: secret, keepaliveInterval: options.amiKeepalive ?? .seconds(20),
                giveUpAfter: self.campaign.ami.giveUpAfter),
            logger: self.logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: ami)]
        var runnerOptions = options.runner
        runnerOptions.drain = self.campaign.drain
        if case .embedded(let host, let port) = self.campaign.engine {
            var configuration = EngineService.Configuration()
            configuration.host = options.engine?.host ?? host
            configuration.port = options.engine?.port ?? port
            configuration.maximumCalls = self.campaign.maxConcurrentCalls
            configuration.templates = [self.template]
            configuration.drain = options.engineDrain
            configuration.providers = self.campaign.providers
            // No call is dialled before the engine can take it: an answered call with no engine is abandoned.
            let listening = NIOLockedValueBox(false)
            configuration.onListening = { address in
                listening.withLockedValue { $0 = true }
                options.onEngineListening?(address)
            }
            let engine = try EngineService(
                configuration: configuration, resolver: StoreCallResolver(store: self.store, logger: self.logger, now: runnerOptions.now),
                sink: StoreRecordSink(store: self.store, logger: self.logger), logger: self.logger)
            services.append(.init(service: engine))
            let maximum = configuration.maximumCalls
            runnerOptions.engineCapacity = runnerOptions.engineCapacity ?? {
                listening.withLockedValue { $0 } ? maximum - engine.engine.liveCalls.count : 0
            }
        }
        let runner = CampaignRunner(
            campaign: self.campaign, campaignID: self.campaignID, store: self.store, ami: ami, options: runnerOptions, logger: self.logger)
        services.append(.init(service: runner, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(services: services, logger: self.logger))
        let caught = try await Self.run(group, logger: self.logger)
        var summary = runner.summary ?? CampaignRunner.Summary(progress: .init(), ending: .stopped)
        summary.signal = caught
        return summary
    }

    /// Runs the group; the first SIGINT or SIGTERM asks it to shut down gracefully (the runner
    /// stops dialling and drains), a second ends it now. The first signal caught, if any.
    static func run(_ group: ServiceGroup, logger: Logger) async throws -> UnixSignal? {
        struct SecondSignal: Error {}
        let first = NIOLockedValueBox<UnixSignal?>(nil)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask {
                    for await signal in signals {
                        guard first.withLockedValue({ $0 }) == nil else {
                            logger.warning("second signal: ending now", metadata: ["signal": "\(signal)"])
                            throw SecondSignal()
                        }
                        first.withLockedValue { $0 = signal }
                        logger.notice("signal: stopping (a second signal ends now)", metadata: ["signal": "\(signal)"])
                        await group.triggerGracefulShutdown()
                    }
                }
                try await tasks.next()
                tasks.cancelAll()
            }
        } catch is SecondSignal {}
        return first.withLockedValue { $0 }
    }
}

/// A do-not-call file: one number per line, or a CSV whose first column is the number
/// (a header line is skipped).
public enum DoNotCallFile {
    public static func read(path: String, defaultRegion: String) throws -> (numbers: [PhoneNumber], badLines: [Int]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw LeadImporter.ImportError(file: path, line: nil, message: "cannot read the file") }
        let parser = try PhoneNumberParser(defaultRegion: defaultRegion)
        do {
            return try self.parse([UInt8](data), parser: parser)
        } catch {
            throw LeadImporter.ImportError(file: path, line: error.line, message: error.message)
        }
    }

    static func parse(_ bytes: [UInt8], parser: PhoneNumberParser) throws(CSVError) -> (numbers: [PhoneNumber], badLines: [Int]) {
        var reader = CSVReader(bytes: bytes)
        var numbers: [PhoneNumber] = []
        var bad: [Int] = []
        while let record = try reader.next() {
            let cell = record.field(0, in: bytes).trimmingCharacters(in: .whitespaces)
            if cell.isEmpty || cell.hasPrefix("#") { continue }
            if let number = try? parser.parse(cell) {
                numbers.append(number)
            } else if record.line > 1 || cell.contains(where: \.isNumber) {
                bad.append(record.line)
            }
        }
        return (numbers, bad)
    }
}
