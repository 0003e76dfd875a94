// N concurrent calls through the real AudioSocket server and conversation engine, with
// instant fake providers, driven by simulated callers in a second process.
//
//   EngineLoad engine  --port P --seconds S [--warmup W]        the engine; prints a JSON summary
//   EngineLoad callers --port P --calls N --seconds S [--call-seconds C]
//
// Each caller says 0.8 s of speech, stays silent 1.2 s, and so on; calls last C seconds and
// are replaced as they end, so N calls are up at any time. The engine measures the latency it
// adds (the end-of-utterance event reaching it → the reply's first frame written), the
// lateness of each 20 ms slot's last frame, its CPU time and its resident memory.
import AudioSocket
import Conversation
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PBXSimulator
import Speech

@main
enum EngineLoad {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        func value(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
            return Int(arguments[index + 1]) ?? fallback
        }
        switch arguments.first {
        case "engine":
            try await Self.engine(port: value("--port", 19_300), seconds: value("--seconds", 60), warmup: value("--warmup", 15))
        case "callers":
            await Self.callers(port: value("--port", 19_300), calls: value("--calls", 100), seconds: value("--seconds", 60), callSeconds: value("--call-seconds", 60))
        default:
            print("usage: EngineLoad engine|callers [--port P] [--calls N] [--seconds S] [--call-seconds C] [--warmup W]")
            exit(2)
        }
    }

    // MARK: engine side

    static func engine(port: Int, seconds: Int, warmup: Int) async throws {
        let samples = Samples()
        var logger = Logger(label: "engine-load")
        logger.logLevel = .error
        let engine = ConversationEngine(
            resolver: AnyCallResolver(template: Self.template, lead: ["first_name": "Ana"]),
            providers: ConversationProviders(
                recognizer: InstantRecognizer(), synthesizer: InstantSynthesizer(), sink: DiscardingSink(),
                observer: samples, policy: { _ in EchoPolicy() }
            ),
            logger: logger
        )
        let server = AudioSocketServer(
            configuration: .init(port: port, onFrameLateness: { samples.lateness($0) }),
            application: engine,
            logger: logger
        )
        let idle = Process.sample()
        print(#"{"event": "listening", "port": \#(port), "rss_mb": \#(idle.rssMB)}"#)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await Task.sleep(for: .seconds(warmup))
            samples.reset()
            let start = Process.sample()
            var windows: [String] = []
            for _ in 0..<((seconds - warmup) / 10) {
                let before = Process.sample()
                try await Task.sleep(for: .seconds(10))
                let after = Process.sample()
                let window = samples.takeWindow()
                windows.append(String(
                    format: #"{"live_calls": %d, "replies": %d, "latency_p50_ms": %.3f, "latency_p99_ms": %.3f, "lateness_p99_ms": %.3f, "cpu_percent": %.1f, "rss_mb": %.1f}"#,
                    samples.liveCalls, window.latencies.count, window.latencies.percentile(0.5), window.latencies.percentile(0.99),
                    window.lateness.percentile(0.99), after.cpuPercent(since: before), after.rssMB
                ))
                print(windows.last!)
            }
            let end = Process.sample()
            let all = samples.all()
            let live = samples.liveCalls
            print(String(
                format: #"{"event": "summary", "live_calls": %d, "calls_ended": %d, "replies": %d, "latency_p50_ms": %.3f, "latency_p99_ms": %.3f, "latency_max_ms": %.3f, "lateness_p50_ms": %.3f, "lateness_p99_ms": %.3f, "lateness_max_ms": %.3f, "cpu_percent": %.1f, "rss_idle_mb": %.1f, "rss_start_mb": %.1f, "rss_end_mb": %.1f, "kb_per_call": %.1f, "underruns": %d, "late_frames": %d}"#,
                live, samples.callsEnded, all.latencies.count, all.latencies.percentile(0.5), all.latencies.percentile(0.99), all.latencies.max() ?? 0,
                all.lateness.percentile(0.5), all.lateness.percentile(0.99), all.lateness.max() ?? 0, end.cpuPercent(since: start),
                idle.rssMB, start.rssMB, end.rssMB, live > 0 ? (end.rssMB - idle.rssMB) * 1024 / Double(live) : 0,
                samples.underruns, samples.lateFrames
            ))
            group.cancelAll()
        }
    }

    static let template = try! PitchTemplate.parse(
        """
        name: load
        company: Load Test
        agent_name: Alex
        goal: measure the engine
        greeting: "Hi {{first_name}}, this is {{agent_name}} from {{company}}."
        pitch: ["One."]
        question: "Two?"
        faq: []
        objections: []
        closings:
          interested: "Bye."
          not_interested: "Bye."
          callback: "Bye."
          do_not_call: "Bye."
          wrong_person: "Bye."
          no_response: "Bye."
        """,
        file: "load.yaml"
    )

    // MARK: caller side

    static func callers(port: Int, calls: Int, seconds: Int, callSeconds: Int) async {
        let speech = TestAudio.tone(frequency: 300, duration: .milliseconds(800), amplitude: 6_000)
        var steps: [CallerScript.Step] = [.pause(.milliseconds(1_500), sendSilence: true)]
        for _ in 0..<(callSeconds / 2) { steps += [.say(speech), .pause(.milliseconds(1_200), sendSilence: true)] }
        steps.append(.hangup)
        let script = CallerScript(steps: steps, maximumDuration: .seconds(callSeconds + 30))
        let deadline = ContinuousClock.now + .seconds(seconds)
        let endings = NIOLockedValueBox<[String: Int]>([:])
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<calls {
                group.addTask {
                    // Spread the starts over the first 10 s, then replace each call as it ends.
                    try? await Task.sleep(for: .milliseconds(index * 10_000 / max(1, calls)))
                    while ContinuousClock.now < deadline {
                        var caller = SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script)
                        caller.keepsRecording = false
                        let recording = await caller.run()
                        endings.withLockedValue { $0["\(recording.ending)", default: 0] += 1 }
                        if recording.ending == .connectFailed { try? await Task.sleep(for: .milliseconds(100)) }
                    }
                }
            }
        }
        print("callers: \(endings.withLockedValue { $0 })")
    }
}

// MARK: instant fakes

/// Hears speech by level: speech started on the first loud frame, the utterance over after 200 ms of quiet.
final class InstantRecognizer: SpeechRecognizer {
    func open(_ options: RecognitionOptions) async throws -> any RecognitionSession { InstantRecognition() }
}

final class InstantRecognition: RecognitionSession, @unchecked Sendable {
    let events: AsyncThrowingStream<RecognitionEvent, any Error>
    private let continuation: AsyncThrowingStream<RecognitionEvent, any Error>.Continuation
    private let lock = NIOLock()
    private var inSpeech = false
    private var quietFrames = 0

    init() {
        (self.events, self.continuation) = AsyncThrowingStream.makeStream()
    }

    func feed(_ samples: [Int16]) {
        let loud = samples.contains { $0.magnitude > 1_000 }
        let ended: Bool = self.lock.withLock {
            if loud {
                if !self.inSpeech { self.continuation.yield(.speechStarted) }
                self.inSpeech = true
                self.quietFrames = 0
                return false
            }
            guard self.inSpeech else { return false }
            self.quietFrames += 1
            if self.quietFrames < 10 { return false }
            self.inSpeech = false
            return true
        }
        if ended {
            self.continuation.yield(.final("yes please"))
            self.continuation.yield(.utteranceEnd)
        }
    }

    func finalize() {
        let wasSpeaking = self.lock.withLock {
            defer { self.inSpeech = false }
            return self.inSpeech
        }
        if wasSpeaking { self.continuation.yield(.final("yes please")) }
        self.continuation.yield(.utteranceEnd)
    }

    func close() { self.continuation.finish() }
}

/// Half a second of tone per chunk of text, at once.
struct InstantSynthesizer: SpeechSynthesizer {
    static let audio = TestAudio.tone(frequency: 440, duration: .milliseconds(500), amplitude: 5_000)
    var voice: String { "instant" }
    func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        AsyncThrowingStream { continuation in
            continuation.yield(Self.audio)
            continuation.finish()
        }
    }
}

/// Says "Okay." to everything, for ever.
struct EchoPolicy: DialoguePolicy {
    func start(_ context: CallContext) throws -> any DialogueSession { EchoDialogue() }
}

final class EchoDialogue: DialogueSession {
    let opening = "Hi Ana, this is Alex from Load Test, an automated assistant."
    func reply(to callerText: String, history: [DialogueTurn]) -> AsyncThrowingStream<PolicyOutput, any Error> {
        AsyncThrowingStream { continuation in
            continuation.yield(.text("Okay."))
            continuation.finish()
        }
    }
    func silence(count: Int) -> [PolicyOutput] { [.text("Hello?")] }
    func dtmf(_ digit: Character) -> [PolicyOutput]? { nil }
    func timeUp() -> [PolicyOutput] { [.text("Bye."), .action(.endCall(.noConversation))] }
}

struct DiscardingSink: CallRecordSink {
    func update(_ record: CallRecord) async {}
    func finish(_ record: CallRecord) async {}
}

// MARK: measurement

final class Samples: ConversationObserver {
    struct Window {
        var latencies: [Double] = []
        var lateness: [Double] = []
    }
    private struct State {
        var window = Window()
        var all = Window()
        var live = 0
        var ended = 0
        var underruns = 0
        var lateFrames = 0
    }
    private let state = NIOLockedValueBox(State())

    func callStarted() { self.state.withLockedValue { $0.live += 1 } }
    func callEnded(_ record: CallRecord) {
        self.state.withLockedValue {
            $0.live -= 1
            $0.ended += 1
            $0.underruns += record.underruns
            $0.lateFrames += record.lateFrames
        }
    }
    func replyStarted(after latency: Duration) {
        let milliseconds = Double(latency.components.attoseconds) / 1e15 + Double(latency.components.seconds) * 1_000
        self.state.withLockedValue { $0.window.latencies.append(milliseconds) }
    }
    func lateness(_ amount: TimeAmount) {
        let milliseconds = Double(amount.nanoseconds) / 1e6
        self.state.withLockedValue { $0.window.lateness.append(milliseconds) }
    }
    func reset() {
        self.state.withLockedValue {
            $0.window = Window()
            $0.all = Window()
            $0.ended = 0
            $0.underruns = 0
            $0.lateFrames = 0
        }
    }
    func takeWindow() -> Window {
        self.state.withLockedValue { state in
            let window = state.window
            state.all.latencies += window.latencies
            state.all.lateness += window.lateness
            state.window = Window()
            return window
        }
    }
    func all() -> Window { self.state.withLockedValue { $0.all } }
    var liveCalls: Int { self.state.withLockedValue { $0.live } }
    var callsEnded: Int { self.state.withLockedValue { $0.ended } }
    var underruns: Int { self.state.withLockedValue { $0.underruns } }
    var lateFrames: Int { self.state.withLockedValue { $0.lateFrames } }
}

extension Array where Element == Double {
    func percentile(_ fraction: Double) -> Double {
        guard !self.isEmpty else { return 0 }
        let sorted = self.sorted()
        return sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }
}

/// CPU time and resident memory of this process, from /proc.
struct Process {
    var at: ContinuousClock.Instant
    var cpuSeconds: Double
    var rssMB: Double

    static func sample() -> Process {
        let stat = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)) ?? ""
        // Fields after the command name (which may hold spaces) start at ") ".
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let user = fields.count > 12 ? Double(fields[11]) ?? 0 : 0
        let system = fields.count > 13 ? Double(fields[12]) ?? 0 : 0
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = Double(statm.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return Process(at: .now, cpuSeconds: (user + system) / ticks, rssMB: pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576)
    }

    func cpuPercent(since earlier: Process) -> Double {
        let wall = self.at - earlier.at
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        return seconds > 0 ? 100 * (self.cpuSeconds - earlier.cpuSeconds) / seconds : 0
    }
}
