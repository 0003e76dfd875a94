// N concurrent calls through the real AudioSocket server and conversation engine, with
// instant fake providers, driven by simulated callers in a second process.
//
//   EngineLoad engine  --port P --seconds S [--warmup W] [--cloud DEEPGRAM_PORT CHAT_PORT | --cloud-here [DOUBLES OPTIONS]] [--only speech|llm]
//                                                              the engine; prints a JSON summary (--cloud-here:
//                                                              the doubles in the engine's own process)
//   EngineLoad callers --port P --calls N --seconds S [--call-seconds C]
//   EngineLoad doubles --deepgram-port P --chat-port Q [--check-first | --unread] [--shared-loops]
//                                                              Deepgram and an OpenAI-compatible
//                                                              server on loopback, answering at once:
//                                                              the chat double on an event loop of its
//                                                              own, as a separate service is, reading
//                                                              and checking each request body once it
//                                                              has answered (--check-first: before, and
//                                                              a bad body gets its 400; --unread: never;
//                                                              --shared-loops: both doubles on one group)
//   EngineLoad chatping [--chat-port Q] [--requests N] [--gap-ms G] [--turns T]
//                                                              one model request at a time, timed
//
// Each caller says 0.8 s of speech, stays silent 1.2 s, and so on; calls last C seconds and
// are replaced as they end, so N calls are up at any time. The engine measures the latency it
// adds (the end-of-utterance event reaching it → the reply's first frame written), the
// lateness of each 20 ms slot's last frame, its CPU time and its resident memory.
//
// With --cloud the engine's providers are the production clients (DeepgramRecognizer,
// DeepgramSynthesizer over its socket pool, LLMPolicy over HTTP) against `doubles` in a third
// process: the latency then includes the model's request and the TTS socket on loopback. The
// `shares` line splits it as the clients measure it at the wire: the model's time to its first
// token and the speech's time to its first audio (each from the request's last byte out to the
// read that brought the answer: the doubles' share), and the rest, the engine's own share.
import AudioSocket
import ChatCompletions
import Conversation
import Deepgram
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator
import ProviderDoubles
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
            var cloud: (Int, Int)?
            if let index = arguments.firstIndex(of: "--cloud"), index + 2 < arguments.count, let deepgram = Int(arguments[index + 1]),
                let chat = Int(arguments[index + 2])
            {
                cloud = (deepgram, chat)
            }
            if arguments.contains("--cloud-here") { cloud = try await Self.startDoubles(deepgramPort: 0, chatPort: 0, arguments: arguments).ports }
            let only = arguments.firstIndex(of: "--only").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
            try await Self.engine(port: value("--port", 19_300), seconds: value("--seconds", 60), warmup: value("--warmup", 15), cloud: cloud, only: only)
        case "chatping":
            try await Self.chatPing(
                chatPort: value("--chat-port", 0), requests: value("--requests", 500), gapMs: value("--gap-ms", 0), turns: value("--turns", 1))
        case "doubles":
            try await Self.doubles(deepgramPort: value("--deepgram-port", 19_500), chatPort: value("--chat-port", 19_501), arguments: arguments)
        case "greeting":
            try await Self.greeting(template: arguments.dropFirst().first ?? "../templates/solar-assessment.yaml", calls: value("--calls", 20), together: value("--together", 1))
        case "callers":
            await Self.callers(port: value("--port", 19_300), calls: value("--calls", 100), seconds: value("--seconds", 60), callSeconds: value("--call-seconds", 60))
        default:
            print("usage: EngineLoad engine|callers [--port P] [--calls N] [--seconds S] [--call-seconds C] [--warmup W]")
            print("       EngineLoad greeting TEMPLATE.yaml [--calls N] [--together K]")
            exit(2)
        }
    }

    // MARK: engine side

    /// `only`: `speech` (Deepgram clients, the instant policy) or `llm` (the model client, instant speech).
    static func engine(port: Int, seconds: Int, warmup: Int, cloud: (deepgram: Int, chat: Int)?, only: String? = nil) async throws {
        let samples = Samples()
        var logger = Logger(label: "engine-load")
        logger.logLevel = ProcessInfo.processInfo.environment["LOAD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        var providers = ConversationProviders(
            recognizer: InstantRecognizer(), synthesizer: InstantSynthesizer(), sink: DiscardingSink(),
            observer: samples, policy: { _ in EchoPolicy() }
        )
        if let cloud {
            let deepgram = DeepgramEndpoint(baseURL: URL(string: "http://127.0.0.1:\(cloud.deepgram)")!, credential: .apiKey(Self.doublesKey))
            if only != "llm" {
                providers.recognizer = DeepgramRecognizer(endpoint: deepgram, logger: logger)
                providers.synthesizer = DeepgramSynthesizer(endpoint: deepgram, logger: logger)
            }
            if only != "speech" {
                let client = ChatCompletionsClient(
                    endpoint: ChatEndpoint(baseURL: "http://127.0.0.1:\(cloud.chat)/v1", apiKey: Self.doublesKey, model: "load-model"), logger: logger)
                providers.policy = { LLMPolicy(template: $0, client: client) }
            }
        }
        let engine = ConversationEngine(
            resolver: AnyCallResolver(template: Self.template, lead: ["first_name": "Ana"]), providers: providers, logger: logger)
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
            // With the cloud clients: the engine's own share, and the doubles' times at the wire.
            print(String(
                format: #"{"event": "shares", "engine_p50_ms": %.3f, "engine_p99_ms": %.3f, "llm_ttft_p50_ms": %.3f, "llm_ttft_p99_ms": %.3f, "tts_ttfb_p50_ms": %.3f, "tts_ttfb_p99_ms": %.3f}"#,
                all.engine.percentile(0.5), all.engine.percentile(0.99), all.llmTimeToFirstToken.percentile(0.5), all.llmTimeToFirstToken.percentile(0.99),
                all.ttsTimeToFirstByte.percentile(0.5), all.ttsTimeToFirstByte.percentile(0.99)))
            print(#"{"event": "turns of ended calls", "counts": "\#(samples.turns.sorted { $0.key < $1.key })"}"#)
            group.cancelAll()
        }
    }

    static let doublesKey = "load-test-key-0000000000000000000000"

    /// The provider doubles, answering every request at once: each stretch of caller speech is
    /// "yes please", every model reply is "Okay.".
    /// Prints, every 10 s, how many answered model requests the service would have refused (and
    /// how many requests the double keeps, at most 100).
    static func doubles(deepgramPort: Int, chatPort: Int, arguments: [String]) async throws {
        let (ports, chat) = try await Self.startDoubles(deepgramPort: deepgramPort, chatPort: chatPort, arguments: arguments)
        print(#"{"event": "doubles listening", "deepgram_port": \#(ports.deepgram), "chat_port": \#(ports.chat)}"#)
        while true {
            try await Task.sleep(for: .seconds(10))
            // Unbuffered: the process is ended by a signal.
            let line = #"{"event": "doubles", "chat_requests_kept": \#(chat.requests.count), "chat_refused_after_answering": \#(chat.refusedAfterAnswering)}"#
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// Starts the doubles in this process (port 0: a free one); returns their ports and the chat double.
    static func startDoubles(deepgramPort: Int, chatPort: Int, arguments: [String]) async throws -> (ports: (deepgram: Int, chat: Int), chat: FakeChatServer) {
        let deepgram = FakeDeepgramServer(apiKey: Self.doublesKey)
        deepgram.hearEveryStretch(as: "yes please")
        let bodyCheck: FakeChatServer.BodyCheck =
            arguments.contains("--unread") ? .never : arguments.contains("--check-first") ? .beforeAnswering : .afterAnswering
        let chat = FakeChatServer(apiKey: Self.doublesKey, pieceSizes: [4096], keptRequests: 100, bodyCheck: bodyCheck)
        chat.answerEveryRequest(.stream(FakeChatServer.chunks(text: "Okay.", size: 16)))
        let deepgramURL = try await deepgram.start(port: deepgramPort)
        let chatGroup = arguments.contains("--shared-loops") ? MultiThreadedEventLoopGroup.singleton : MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let chatURL = try await chat.start(port: chatPort, group: chatGroup)
        return ((deepgramURL.port!, URL(string: chatURL)!.port!), chat)
    }

    /// One model reply at a time, timed at two layers: the dialogue (LLMPolicy, as the engine
    /// calls it, with `turns` exchanges of history) and the client's stream of a short request.
    /// `gapMs` of idleness between requests, as a call's turns have. Port 0: the chat double runs
    /// in this process.
    static func chatPing(chatPort: Int, requests: Int, gapMs: Int, turns: Int) async throws {
        var logger = Logger(label: "chat-ping")
        logger.logLevel = .error
        var port = chatPort
        let local = FakeChatServer(apiKey: Self.doublesKey, pieceSizes: [4096], keptRequests: 100)
        if port == 0 {
            local.answerEveryRequest(.stream(FakeChatServer.chunks(text: "Okay.", size: 16)))
            port = URL(string: try await local.start())!.port!
        }
        let client = ChatCompletionsClient(
            endpoint: ChatEndpoint(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: Self.doublesKey, model: "load-model"), logger: logger)
        let session = try LLMPolicy(template: Self.template, client: client).start(
            CallContext(callID: UUID(), lead: ["first_name": "Ana"], timeZone: .gmt, startedAt: Date()))
        let history = [DialogueTurn(speaker: .agent, text: session.opening)]
            + (0..<turns).flatMap { _ in [DialogueTurn(speaker: .caller, text: "yes please"), DialogueTurn(speaker: .agent, text: "Okay.")] }.dropLast()
        func ms(_ duration: Duration) -> Double { Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1_000 }
        /// `requests` replies one after another: the time to the first text and to the end of each.
        func measure<Replies: AsyncSequence>(_ reply: () -> Replies, isText: (Replies.Element) -> Bool) async throws -> (first: [Double], end: [Double]) {
            var times: (first: [Double], end: [Double]) = ([], [])
            for _ in 0..<requests {
                let start = ContinuousClock.now
                var first: ContinuousClock.Instant?
                for try await element in reply() where first == nil && isText(element) { first = .now }
                times.first.append(ms(first! - start))
                times.end.append(ms(.now - start))
                if gapMs > 0 { try await Task.sleep(for: .milliseconds(gapMs)) }
            }
            return times
        }
        let dialogue = try await measure({ session.reply(to: "yes please", history: history) }) {
            if case .text = $0 { true } else { false }
        }
        let request = client.request([.system("You are a test."), .user("yes please")], maxTokens: 160)
        let stream = try await measure({ client.stream(request) }) {
            if case .content = $0 { true } else { false }
        }
        for (name, layer) in [("dialogue", dialogue), ("client", stream)] {
            print(String(
                format: #"{"layer": "%@", "requests": %d, "first_text_p50_ms": %.3f, "first_text_p99_ms": %.3f, "end_p50_ms": %.3f, "end_p99_ms": %.3f}"#,
                name, layer.first.count, layer.first.percentile(0.5), layer.first.percentile(0.99), layer.end.percentile(0.5), layer.end.percentile(0.99)))
        }
        if chatPort == 0 { await local.stop() }
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

    // MARK: greeting latency, offline providers

    /// The time from a call's AudioSocket connection to its first audible agent frame, with the
    /// engine as `cex engine serve` runs it (espeak-ng behind the synthesis cache, pocketsphinx
    /// preloaded), `calls` calls in groups of `together` arriving at once.
    static func greeting(template path: String, calls: Int, together: Int) async throws {
        let template = try PitchTemplate.load(path: path)
        let synthesizer = CachingSynthesizer(EspeakSynthesizer())
        let recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: max(4, together)))
        try await recognizer.prepare(together)
        await synthesizer.prepare(template.fixedOpeningSpeech)
        var logger = Logger(label: "greeting")
        logger.logLevel = .error
        let engine = ConversationEngine(
            resolver: AnyCallResolver(template: template, lead: ["first_name": "Ana", "city": "Springfield"]),
            providers: ConversationProviders(recognizer: recognizer, synthesizer: synthesizer, sink: DiscardingSink()),
            logger: logger
        )
        let port = NIOLockedValueBox<Int?>(nil)
        let server = AudioSocketServer(configuration: .init(port: 0, onListening: { address in port.withLockedValue { $0 = address.port } }), application: engine, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            while port.withLockedValue({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            let bound = port.withLockedValue { $0 }!
            var latencies: [Double] = []
            for _ in 0..<(calls / max(1, together)) {
                let found = await withTaskGroup(of: Double?.self) { callers in
                    for _ in 0..<together {
                        callers.addTask {
                            let script = CallerScript(steps: [.pause(.milliseconds(1_500), sendSilence: true), .hangup])
                            let recording = await SimulatedCaller(host: "127.0.0.1", port: bound, callID: UUID(), script: script).run()
                            // Frames arrive in order: the first with speech in it.
                            var samples = 0
                            for frame in recording.received where frame.kind == 0x10 {
                                let payload = recording.receivedAudio[samples..<min(recording.receivedAudio.count, samples + frame.length / 2)]
                                samples += frame.length / 2
                                if payload.contains(where: { $0.magnitude > 64 }) {
                                    return Double(frame.arrival.components.attoseconds) / 1e15 + Double(frame.arrival.components.seconds) * 1_000
                                }
                            }
                            return nil
                        }
                    }
                    var found: [Double] = []
                    for await latency in callers { if let latency { found.append(latency) } }
                    return found
                }
                latencies += found
                try await Task.sleep(for: .milliseconds(300))
            }
            print(String(
                format: #"{"event": "greeting", "calls": %d, "together": %d, "first_audio_p50_ms": %.1f, "first_audio_p99_ms": %.1f, "first_audio_max_ms": %.1f, "cache_hits": %d, "cache_misses": %d}"#,
                latencies.count, together, latencies.percentile(0.5), latencies.percentile(0.99), latencies.max() ?? 0, synthesizer.counts.hits, synthesizer.counts.misses
            ))
            group.cancelAll()
        }
    }

    // MARK: caller side

    static func callers(port: Int, calls: Int, seconds: Int, callSeconds: Int) async {
        // One event loop drives every call, as the pacer does: a 20 ms tick writes each call's
        // next frame. Per call and frame that is one write, with no task switch, so the load
        // generator costs far less than the engine it loads.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let load = LoadCallers(loop: loop, port: port, calls: calls, callFrames: callSeconds * 50)
        try? await loop.submit { load.start() }.get()
        try? await Task.sleep(for: .seconds(seconds))
        let stopped = try? await loop.submit { load.stop() }.get()
        // Every call closed before the loop goes: a close finishing later would schedule on a loop that is gone.
        try? await stopped?.closed.get()
        print("callers: \(stopped?.counts ?? [:])")
        try? await group.shutdownGracefully()
    }
}

/// The stand-in's Asterisk side of AudioSocket, lean: connects, sends the UUID frame, then
/// 0.8 s of speech and 1.2 s of silence in turn, one frame per 20 ms; hangs up after
/// `callFrames` frames and dials again. Everything runs on one event loop.
final class LoadCallers: @unchecked Sendable {
    private let loop: any EventLoop
    private let port: Int
    private let calls: Int
    private let callFrames: Int
    private var live: [ObjectIdentifier: (channel: any Channel, frame: Int)] = [:]
    private var counts: [String: Int] = [:]
    private var tick: Scheduled<Void>?
    private var nextTick = NIODeadline.now()
    private var stopping = false
    private let speech: [ByteBuffer]
    private let silence: ByteBuffer

    init(loop: any EventLoop, port: Int, calls: Int, callFrames: Int) {
        self.loop = loop
        self.port = port
        self.calls = calls
        self.callFrames = callFrames
        let tone = TestAudio.tone(frequency: 300, duration: .milliseconds(800), amplitude: 6_000)
        self.speech = stride(from: 0, to: tone.count, by: 160).map { start in
            var payload = ByteBuffer()
            payload.writePCMSamples(tone[start..<min(tone.count, start + 160)])
            var frame = ByteBuffer()
            AudioSocketFrame.audio(.slin8, payload).encode(into: &frame)
            return frame
        }
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0, count: 320)
        var frame = ByteBuffer()
        AudioSocketFrame.audio(.slin8, payload).encode(into: &frame)
        self.silence = frame
    }

    func start() {
        // Spread the first calls over 10 s.
        for index in 0..<self.calls {
            self.loop.scheduleTask(in: .milliseconds(Int64(index * 10_000 / max(1, self.calls)))) { self.dial(offset: index) }
        }
        self.nextTick = .now() + .milliseconds(20)
        self.scheduleTick()
    }

    /// Ticks on absolute 20 ms deadlines, so the time spent writing never slows the callers down.
    private func scheduleTick() {
        guard !self.stopping else { return }
        self.tick = self.loop.scheduleTask(deadline: self.nextTick) {
            while self.nextTick <= .now() {
                self.sendFrames()
                self.nextTick = self.nextTick + .milliseconds(20)
            }
            self.scheduleTick()
        }
    }

    func stop() -> (counts: [String: Int], closed: EventLoopFuture<Void>) {
        self.stopping = true
        self.tick?.cancel()
        let closing = self.live.values.map { $0.channel.close() }
        return (self.counts, EventLoopFuture.andAllComplete(closing, on: self.loop))
    }

    private func dial(offset: Int) {
        guard !self.stopping else { return }
        let connect = ClientBootstrap(group: self.loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AudioSocketFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LoadCallerHandler { self.count($0) })
                }
            }
            .connect(host: "127.0.0.1", port: self.port)
        connect.whenSuccess { channel in
            var uuid = ByteBuffer()
            AudioSocketFrame.uuid(UUID()).encode(into: &uuid)
            channel.writeAndFlush(uuid, promise: nil)
            let id = ObjectIdentifier(channel)
            // Each call starts at its own place in the speech cycle.
            self.live[id] = (channel, -(offset % 100) - 75)
            channel.closeFuture.whenComplete { _ in
                self.live[id] = nil
                guard !self.stopping else { return }
                self.loop.scheduleTask(in: .milliseconds(100)) { self.dial(offset: offset + 1) }
            }
        }
        connect.whenFailure { _ in
            guard !self.stopping else { return }
            self.count("connect failed")
            self.loop.scheduleTask(in: .milliseconds(200)) { self.dial(offset: offset) }
        }
    }

    private func count(_ what: String) { self.counts[what, default: 0] += 1 }

    private func sendFrames() {
        for (id, call) in self.live {
            let frame = call.frame + 1
            if frame >= self.callFrames {
                self.count("caller hung up")
                self.live[id] = nil
                call.channel.close(promise: nil)
                continue
            }
            self.live[id] = (call.channel, frame)
            let position = ((frame % 100) + 100) % 100
            call.channel.writeAndFlush(position < self.speech.count && frame >= 0 ? self.speech[position] : self.silence, promise: nil)
        }
    }
}

/// Reads the engine's frames and notes how the call ended.
final class LoadCallerHandler: ChannelInboundHandler {
    typealias InboundIn = AudioSocketFrame
    private let count: (String) -> Void

    init(count: @escaping (String) -> Void) { self.count = count }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .hangup = self.unwrapInboundIn(data) {
            self.count("engine hung up")
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.count("protocol error")
        context.close(promise: nil)
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
        /// Of each latency, what the engine added: less the providers' times at the wire.
        var engine: [Double] = []
        var llmTimeToFirstToken: [Double] = []
        var ttsTimeToFirstByte: [Double] = []
        var lateness: [Double] = []
    }
    private struct State {
        var window = Window()
        var all = Window()
        var live = 0
        var ended = 0
        var underruns = 0
        var lateFrames = 0
        /// Of the calls ended: caller turns, agent turns, agent turns cut off, caller turns left without an answer.
        var turns: [String: Int] = [:]
    }
    private let state = NIOLockedValueBox(State())

    func callStarted() { self.state.withLockedValue { $0.live += 1 } }
    func callEnded(_ record: CallRecord) {
        self.state.withLockedValue {
            $0.live -= 1
            $0.ended += 1
            $0.underruns += record.underruns
            $0.lateFrames += record.lateFrames
            $0.turns["caller", default: 0] += record.turns.count { $0.speaker == .caller }
            $0.turns["agent", default: 0] += record.turns.count { $0.speaker == .agent }
            $0.turns["agent_cut", default: 0] += record.turns.count { $0.speaker == .agent && $0.interrupted }
            $0.turns["unanswered", default: 0] += record.turns.count { $0.speaker == .caller && $0.timeline?.firstFrameOutMs == nil }
        }
    }
    func replyStarted(after latency: Duration, providers: ProviderTimes) {
        func milliseconds(_ duration: Duration) -> Double { Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1_000 }
        self.state.withLockedValue { state in
            state.window.latencies.append(milliseconds(latency))
            state.window.engine.append(milliseconds(latency - providers.total))
            if let time = providers.llmTimeToFirstToken { state.window.llmTimeToFirstToken.append(milliseconds(time)) }
            if let time = providers.ttsTimeToFirstByte { state.window.ttsTimeToFirstByte.append(milliseconds(time)) }
        }
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
            state.all.engine += window.engine
            state.all.llmTimeToFirstToken += window.llmTimeToFirstToken
            state.all.ttsTimeToFirstByte += window.ttsTimeToFirstByte
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
    var turns: [String: Int] { self.state.withLockedValue { $0.turns } }
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
