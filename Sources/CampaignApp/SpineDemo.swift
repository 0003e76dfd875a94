import AsteriskManager
import AudioSocket
import CampaignCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator

/// The telephony loop end to end against the built-in Asterisk stand-in: AMI login, one
/// Originate per scripted destination (ChannelId = ActionID = CEX_CALL_ID = the call's UUID),
/// answered calls attached to the AudioSocket engine, every outcome classified from AMI events.
public enum SpineDemo {
    public struct Options: Sendable {
        public var ringTime: Duration = .milliseconds(300)
        public var seed: UInt64? = 7
        public init() {}
    }

    public struct Call: Sendable, Hashable {
        public var label: String
        public var channel: String
        public var callID: UUID
        public var trace: CallTrace
        /// What the engine sent on the AudioSocket leg (answered calls only).
        public var outbound: OutboundAudioStatistics?
        /// How the stand-in's AudioSocket leg ended (answered calls only).
        public var audioEnding: CallerRecording.Ending?
        public var framesReceivedByCaller: Int
    }

    public struct Report: Sendable {
        public var calls: [Call]
        public var ranFor: Duration
    }

    /// The destinations the demo dials: label, dial string, behaviour.
    static func destinations(callerLine: [Int16]) -> [(String, String, CalleeBehaviour)] {
        let talker = CallerScript(steps: [
            .pause(.milliseconds(900), sendSilence: true),
            .say(callerLine),
            .pause(.milliseconds(1200), sendSilence: true),
            .dtmf("1"),
            .say(callerLine),
        ])
        return [
            ("answers and talks", "PJSIP/+15550100001@trunk", .answer(talker)),
            ("busy (PJSIP)", "PJSIP/+15550100002@trunk", .busy),
            ("busy (Local)", "Local/15550100003@callees", .busy),
            ("no answer", "PJSIP/+15550100004@trunk", .noAnswer),
            ("congestion (Local)", "Local/15550100005@callees", .congestion),
            ("unallocated number", "PJSIP/+15550100006@trunk", .unallocated),
            ("rejected", "PJSIP/+15550100007@trunk", .rejected),
            ("voicemail (AMD)", "PJSIP/+15550100008@trunk", .voicemail(CallerScript(steps: [.say(callerLine)]))),
        ]
    }

    /// Runs the loop and returns what happened.
    public static func run(options: Options = Options(), logger: Logger) async throws -> Report {
        let started = ContinuousClock.now
        let secret = UUID().uuidString
        let callerLine = TestAudio.tone(frequency: 330, duration: .milliseconds(600))
        let destinations = Self.destinations(callerLine: callerLine)
        let ports = PortBox()

        var directory: [String: CalleeBehaviour] = [:]
        for (_, channel, behaviour) in destinations {
            directory[SimulatedAsterisk.destination(ofChannel: channel)] = behaviour
        }

        let placed = PlacedCalls()
        let engine = AudioSocketServer(
            configuration: .init(host: "127.0.0.1", port: 0, onListening: { ports.setEngine($0.port ?? 0) }),
            application: ToneEchoEngine(placed: placed),
            logger: logger
        )

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await engine.run() }
            let enginePort = try await ports.engine()
            let pbx = SimulatedAsterisk(
                configuration: .init(
                    host: "127.0.0.1",
                    port: 0,
                    users: [.init(username: "cex", secret: secret)],
                    contexts: ["ai-outbound": .init(engineHost: "127.0.0.1", enginePort: enginePort, runsAMD: true)],
                    directory: directory,
                    ringTime: options.ringTime,
                    seed: options.seed,
                    onListening: { ports.setAMI($0.port ?? 0) }
                ),
                logger: logger
            )
            group.addTask { try await pbx.run() }
            let amiPort = try await ports.ami()
            let client = AMIClient(
                configuration: .init(host: "127.0.0.1", port: amiPort, username: "cex", secret: secret),
                logger: logger
            )
            group.addTask { try await client.run() }

            let events = client.subscribe()
            var iterator = events.makeAsyncIterator()
            while let event = await iterator.next(), event != .connected {}

            var traces: [UUID: CallTrace] = [:]
            var calls: [(String, String, UUID)] = []
            for (label, channel, _) in destinations {
                let callID = UUID()
                let id = callID.uuidString.lowercased()
                placed.add(callID)
                traces[callID] = CallTrace()
                calls.append((label, channel, callID))
                let originate = Originate(
                    channel: channel,
                    target: .dialplan(context: "ai-outbound", exten: "s", priority: "1"),
                    timeoutMilliseconds: 1500,
                    callerID: "\"cex demo\" <15550009999>",
                    variables: [("CEX_CALL_ID", id)],
                    channelID: id,
                    actionID: id
                )
                try await client.send(.originate(originate)).requireSuccess()
            }

            // Follow AMI until every call is over.
            while traces.values.contains(where: { !$0.isComplete }), let event = await iterator.next() {
                guard case .event(let amiEvent) = event else { continue }
                for key in traces.keys { traces[key]!.apply(amiEvent, callID: key.uuidString.lowercased()) }
            }
            // Let the stand-in finish writing its reports.
            var reports: [String: SimulatedAsterisk.CallReport] = [:]
            for _ in 0..<100 where reports.count < destinations.count {
                reports = Dictionary(pbx.reports.map { ($0.uniqueID, $0) }, uniquingKeysWith: { first, _ in first })
                if reports.count < destinations.count { try await Task.sleep(for: .milliseconds(20)) }
            }
            group.cancelAll()

            let result = calls.map { label, channel, callID in
                let recording = reports[callID.uuidString.lowercased()]?.recording
                return Call(
                    label: label,
                    channel: channel,
                    callID: callID,
                    trace: traces[callID]!,
                    outbound: placed.statistics(callID),
                    audioEnding: recording?.ending,
                    framesReceivedByCaller: recording?.received.count ?? 0
                )
            }
            return Report(calls: result, ranFor: ContinuousClock.now - started)
        }
    }

    /// The report as printed by `cex demo`.
    public static func render(_ report: Report) -> String {
        var lines = ["cex telephony demo: built-in Asterisk stand-in, AMI client, AudioSocket engine", ""]
        let header = ["destination", "dial result", "DialStatus", "Reason", "Cause", "TechCause", "audio"]
        var rows = [header]
        for call in report.calls {
            var audio = "-"
            if let outbound = call.outbound {
                audio = "sent \(outbound.framesSent) frames (\(outbound.speechFrames) speech), \(outbound.underruns) underruns, \(outbound.lateFrames) late; caller got \(call.framesReceivedByCaller)"
                if let ending = call.audioEnding { audio += "; ended: \(ending)" }
            }
            rows.append([
                call.label,
                call.trace.result.rawValue,
                call.trace.dialStatus ?? "-",
                call.trace.reason.map { "\($0) (\(AsteriskManager.OriginateReason(rawValue: $0)))" } ?? "-",
                call.trace.cause.map { "\($0) \(HangupCause.text($0))" } ?? "-",
                call.trace.techCause.map(String.init) ?? "-",
                audio,
            ])
        }
        let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        let seconds = Double(report.ranFor.components.seconds) + Double(report.ranFor.components.attoseconds) / 1e18
        lines.append("")
        lines.append("\(report.calls.count) calls in \(String(format: "%.1f", seconds)) s")
        return lines.joined(separator: "\n")
    }
}

/// Ports the demo's servers bound to.
final class PortBox: Sendable {
    private let ports = NIOLockedValueBox<(ami: Int?, engine: Int?)>((nil, nil))

    func setAMI(_ port: Int) { self.ports.withLockedValue { $0.ami = port } }
    func setEngine(_ port: Int) { self.ports.withLockedValue { $0.engine = port } }

    func ami() async throws -> Int { try await self.wait { $0.ami } }
    func engine() async throws -> Int { try await self.wait { $0.engine } }

    private func wait(_ pick: @Sendable ((ami: Int?, engine: Int?)) -> Int?) async throws -> Int {
        for _ in 0..<500 {
            if let port = self.ports.withLockedValue({ pick($0) }) { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }
}

/// The calls this process originated: the AudioSocket resolver admits only these.
final class PlacedCalls: Sendable {
    private let calls = NIOLockedValueBox<[UUID: OutboundAudio?]>([:])

    func add(_ id: UUID) { self.calls.withLockedValue { $0[id] = .some(nil) } }
    func contains(_ id: UUID) -> Bool { self.calls.withLockedValue { $0[id] != nil } }
    func attach(_ id: UUID, _ outbound: OutboundAudio) { self.calls.withLockedValue { $0[id] = outbound } }
    func statistics(_ id: UUID) -> OutboundAudioStatistics? { self.calls.withLockedValue { $0[id]??.statistics } }
}

/// A stand-in conversation for the telephony demo until the conversation engine exists: plays a
/// chime, then after each thing the caller says (energy-based endpointing) plays it back, and
/// hangs up after two turns or when the caller goes.
struct ToneEchoEngine: AudioSocketApplication {
    let placed: PlacedCalls

    func admit(callID: UUID) async -> UUID? {
        self.placed.contains(callID) ? callID : nil
    }

    func handle(_ session: AudioSocketSession, call: UUID) async throws {
        self.placed.attach(call, session.outbound)
        let chime = TestAudio.tone(frequency: 660, duration: .milliseconds(250)) + TestAudio.tone(frequency: 880, duration: .milliseconds(250))
        await session.outbound.speak(chime)

        var utterance: [Int16] = []
        var quietFrames = 0
        var turns = 0
        for await item in session.inbound {
            guard case .audio(let audio) = item else { continue }
            let energy = audio.samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, audio.samples.count))
            if energy > 250_000 {
                utterance += audio.samples
                quietFrames = 0
            } else if !utterance.isEmpty {
                quietFrames += 1
                if quietFrames >= 15 {
                    await session.outbound.speak(utterance)
                    utterance = []
                    turns += 1
                    if turns == 2 { break }
                }
            }
        }
        await session.outbound.speak(chime.reversed())
    }
}
