import CampaignCore
import CampaignStore
import Conversation
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator
import Reports
import Speech

/// `cex demo`: runs `campaigns/demo.yaml` against the built-in Asterisk stand-in, with the
/// embedded engine and offline speech. Each callee follows its lead's `persona` column, speaking
/// with flite. Runs on a clock that starts at 14:00 New York time on a weekday, so the leads are
/// inside their calling windows whenever the demo is run.
public enum CampaignDemo {
    public struct Result: Sendable {
        public var summary: CampaignRunner.Summary
        public var funnel: Funnel
        public var reports: [String]
        public var store: String
        public var ranFor: Duration
    }

    public static func run(
        campaignFile: String, output: URL, logger: Logger, onProgress: (@Sendable (CampaignRunner.Progress) -> Void)? = nil
    ) async throws -> Result {
        let started = ContinuousClock.now
        // The campaign and its template first: a demo that cannot run leaves nothing behind.
        let campaign = try CampaignFile.load(path: campaignFile)
        _ = try PitchTemplate.load(path: campaign.template)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let storePath = output.appendingPathComponent("demo.sqlite").path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
        let store = try CampaignStore(path: storePath)
        let session = try CampaignSession(campaignFile: campaignFile, store: store, logger: logger)
        let lock = try store.lockRun(campaignID: session.campaignID, campaign: session.campaign.name, command: "demo")
        defer { lock.release(ending: "demo over") }
        _ = try session.loadDoNotCallFiles()
        let imports = try session.importLeads()
        for report in imports where report.counts.rejected > 0 {
            logger.warning("demo leads rejected", metadata: ["file": "\(report.file)", "rejects": "\(report.rejectsFile ?? "")"])
        }

        var options = CampaignSession.RunOptions()
        let offset = self.clockOffset()
        options.runner.now = { Date().addingTimeInterval(offset) }
        options.runner.onProgress = onProgress
        let summary = try await self.dialStandIn(
            session, directory: try await self.directory(campaign: session.campaign), options: options, logger: logger)

        var reports: [String] = []
        for format in ReportExporter.Format.allCases {
            let path = output.appendingPathComponent("demo-report.\(format.rawValue)").path
            _ = try ReportOutput.write(to: path, campaign: session.campaign.name, format: format.rawValue) { handle in
                try ReportExporter.export(store: store, campaignID: session.campaignID, campaign: session.campaign.name, format: format, to: handle)
            }
            reports.append(path)
        }
        return Result(
            summary: summary, funnel: Funnel(try store.funnel(campaignID: session.campaignID)), reports: reports, store: storePath,
            ranFor: ContinuousClock.now - started)
    }

    /// Dials the session's campaign against the Asterisk stand-in: its AMI on a free port, the
    /// embedded engine on another, each callee behaving as `directory` says. `during` runs
    /// beside the dialling with the stand-in in hand (tests drop its AMI connections).
    public static func dialStandIn(
        _ session: CampaignSession, directory: [String: CalleeBehaviour], options: CampaignSession.RunOptions, ringTime: Duration = .milliseconds(400),
        logger: Logger, during: (@Sendable (SimulatedAsterisk) async throws -> Void)? = nil
    ) async throws -> CampaignRunner.Summary {
        let secret = UUID().uuidString
        let enginePort = try await self.freePort()
        let amiPort = ListeningPort()
        let pbx = SimulatedAsterisk(
            configuration: .init(
                host: "127.0.0.1", port: 0, users: [.init(username: session.campaign.ami.username, secret: secret)],
                contexts: ["ai-outbound": .init(engineHost: "127.0.0.1", enginePort: enginePort, runsAMD: session.campaign.amd)],
                directory: directory, defaultBehaviour: .unallocated, ringTime: ringTime, seed: 7,
                onListening: { amiPort.set($0.port ?? 0) }),
            logger: logger)
        var options = options
        options.secret = secret
        options.engine = ("127.0.0.1", enginePort)
        options.engineDrain = .seconds(5)
        return try await withThrowingTaskGroup(of: CampaignRunner.Summary?.self) { group in
            group.addTask {
                try await pbx.run()
                return nil
            }
            options.ami = ("127.0.0.1", try await amiPort.wait())
            let runOptions = options
            group.addTask { try await session.dial(options: runOptions) }
            if let during {
                group.addTask {
                    try await during(pbx)
                    return nil
                }
            }
            var summary: CampaignRunner.Summary?
            while summary == nil, let next = try await group.next() { summary = next }
            group.cancelAll()
            return summary!
        }
    }

    /// Seconds to add to the real clock so that the demo starts at 14:00 in New York on a
    /// day the demo campaign calls (Monday to Saturday).
    static func clockOffset(now: Date = Date()) -> TimeInterval {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "America/New_York")!
        var start = calendar.date(bySettingHour: 14, minute: 0, second: 0, of: now)!
        if calendar.component(.weekday, from: start) == 1 { start = calendar.date(byAdding: .day, value: 1, to: start)! }
        return start.timeIntervalSince(now)
    }

    /// The stand-in's callees, by the number each lead's dial string reaches.
    static func directory(campaign: Campaign) async throws -> [String: CalleeBehaviour] {
        let personas = try await self.personas()
        var directory: [String: CalleeBehaviour] = [:]
        let parser = try PhoneNumberParser(defaultRegion: campaign.defaultCountry)
        for file in campaign.leads {
            var reader = CSVReader(bytes: [UInt8](FileManager.default.contents(atPath: file) ?? Data()))
            guard let header = try reader.next() else { continue }
            let columns = try LeadColumns(header: header.strings(in: reader.bytes))
            while let record = try reader.next() {
                let fields = columns.fields(of: record.strings(in: reader.bytes))
                guard let phone = fields["phone"], let number = try? parser.parse(phone), let persona = fields["persona"].flatMap({ personas[$0] })
                else { continue }
                directory[SimulatedAsterisk.destination(ofChannel: campaign.channel(for: number))] = persona
            }
        }
        return directory
    }

    /// What each value of the `persona` column makes a callee do; the lines are spoken with flite.
    static func personas() async throws -> [String: CalleeBehaviour] {
        let voice = FliteSynthesizer()
        func line(_ text: String) async throws -> [Int16] { try await voice.render(text) }
        func conversation(_ lines: [String]) async throws -> CalleeBehaviour {
            var steps: [CallerScript.Step] = []
            for text in lines { steps += [.waitForPause(.milliseconds(700)), .say(try await line(text))] }
            return .answer(CallerScript(steps: steps, maximumDuration: .seconds(120)))
        }
        let personas: [String: CalleeBehaviour] = [
            "interested": try await conversation(["yes", "yes sure", "yes please"]),
            "objection": try await conversation(["it's too expensive", "yes", "yes", "yes please"]),
            "not_interested": try await conversation(["i'm not interested", "no thanks"]),
            "callback": try await conversation(["i'm busy right now, can you call me back tomorrow at ten"]),
            "opt_out": try await conversation(["please remove me from your list"]),
            "wrong_person": try await conversation(["sorry, you have the wrong number"]),
            "silent": .answer(CallerScript(steps: [], maximumDuration: .seconds(60))),
            "busy": .busy,
            "no_answer": .noAnswer,
            "voicemail": .voicemail(CallerScript(steps: [.say(try await line("hi, you've reached my voicemail, please leave a message"))])),
            "unallocated": .unallocated,
            "rejected": .rejected,
        ]
        return personas
    }

    /// A TCP port nothing listens on now.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}

/// The port a server bound to, once it has.
final class ListeningPort: Sendable {
    private let port = NIOLockedValueBox<Int?>(nil)

    func set(_ port: Int) { self.port.withLockedValue { $0 = port } }

    func wait() async throws -> Int {
        for _ in 0..<500 {
            if let port = self.port.withLockedValue({ $0 }) { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }
}
