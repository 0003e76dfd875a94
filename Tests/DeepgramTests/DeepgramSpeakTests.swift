import Deepgram
import Foundation
import Logging
import NIOCore
import NIOPosix
import ProviderDoubles
import Speech
import Synchronization
import TestSupport
import Testing

/// Text to speech over the speak socket and over REST, and token grants, against the loopback Deepgram.
@Suite(.timeLimit(.minutes(1))) struct DeepgramSpeakTests {
    static let key = "dg-test-key-0123456789abcdef0123456789abcdef"

    func withServer(_ body: (FakeDeepgramServer, URL, LogCapture) async throws -> Void) async throws {
        let server = FakeDeepgramServer(apiKey: Self.key)
        let base = try await server.start()
        let logs = LogCapture()
        do {
            try await body(server, base, logs)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func chunks(_ stream: AsyncThrowingStream<[Int16], any Error>) async throws -> [[Int16]] {
        var frames: [[Int16]] = []
        for try await frame in stream { frames.append(frame) }
        return frames
    }

    @Test func pcmInPiecesOfAnySizeComesOutSampleForSampleAsSoonAsEachSampleIsWhole() {
        let samples = FakeDeepgramServer.speech(for: "a sentence of some length")
        let bytes = samples.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xFF), UInt8(UInt16(bitPattern: $0) >> 8)] }
        for size in [1, 3, 7, 320, 1001] {
            var decoder = PCMDecoder()
            var decoded: [Int16] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + size, bytes.count)
                decoded += decoder.decode(bytes[offset..<end])
                // Past the first 44 bytes (which might have been a header), every whole sample is out.
                if end >= 44 { #expect(decoded.count == end / 2, "pieces of \(size)") }
                offset += size
            }
            #expect(decoded + decoder.finish() == samples, "pieces of \(size)")
        }
        var wav = PCMDecoder()
        let header = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WAVEfmt ".utf8) + [16, 0, 0, 0] + [UInt8](repeating: 1, count: 16) + Array("data".utf8) + [0, 0, 0, 0]
        #expect(wav.decode(header + bytes + [0x7F]) + wav.finish() == samples)
        var short = PCMDecoder()
        #expect(short.decode([1, 0, 2]).isEmpty && short.finish() == [1])
    }

    @Test func utterancesStreamOverOneSocketThatIsReused() async throws {
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            let first = try await self.chunks(synthesizer.synthesize("Hello, this is Sam from Acme Solar."))
            #expect(first.flatMap { $0 } == FakeDeepgramServer.speech(for: "Hello, this is Sam from Acme Solar."))
            let second = try await self.chunks(synthesizer.synthesize("Is now a good time?"))
            #expect(second.flatMap { $0 } == FakeDeepgramServer.speech(for: "Is now a good time?"))
            #expect(server.speaks.count == 1)
            #expect(server.speaks[0].messages == ["Speak:Hello, this is Sam from Acme Solar.", "Flush", "Speak:Is now a good time?", "Flush"])
            #expect(server.speaks[0].query["sample_rate"] == ["8000"] && server.speaks[0].query["model"] == ["aura-2-thalia-en"])
            synthesizer.shutdown()
        }
    }

    @Test func aSocketCutWhileIdleLeavesThePoolAndTheNextLineOpensAnother() async throws {
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            _ = try await self.chunks(synthesizer.synthesize("Hello."))
            #expect(synthesizer.idleSockets == 1)
            await server.dropConnections()
            try await eventually { synthesizer.idleSockets == 0 }
            let second = try await self.chunks(synthesizer.synthesize("Is now a good time?"))
            #expect(second.flatMap { $0 } == FakeDeepgramServer.speech(for: "Is now a good time?"))
            #expect(server.speaks.count == 2)
            synthesizer.shutdown()
        }
    }

    @Test func speechComesOverWSSOnlyFromAServerTheClientTrusts() async throws {
        let authority = try TestCertificateAuthority()
        let server = FakeDeepgramServer(apiKey: Self.key)
        let base = try await server.start(tls: try authority.serverContext())
        #expect(base.scheme == "https")
        let logs = LogCapture()
        let trusting = DeepgramSynthesizer(
            endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key), trustRoots: try authority.trustRoots()), logger: logs.logger())
        let untrusting = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
        do {
            let frames = try await self.chunks(trusting.synthesize("Hello over TLS."))
            #expect(frames.flatMap { $0 } == FakeDeepgramServer.speech(for: "Hello over TLS."))
            #expect(server.speaks.count == 1)
            await #expect(throws: DeepgramError.untrusted("CERTIFICATE_VERIFY_FAILED")) { _ = try await self.chunks(untrusting.synthesize("Never heard.")) }
            #expect(server.speaks.count == 1)
        } catch {
            Issue.record(error)
        }
        trusting.shutdown()
        await server.stop()
    }

    @Test func aListenerThatStopsClearsTheSocketAndTheNextLineIsItsOwn() async throws {
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            // The line's audio stops coming after its start, so the listener leaves mid-line.
            server.stallSpeech()
            for try await _ in synthesizer.synthesize("A rather long answer about panels.") { break }
            // Back in the pool once Deepgram answers the Clear.
            try await eventually { server.speaks.first?.messages.last == "Clear" && synthesizer.idleSockets == 1 }
            server.stallSpeech(false)
            let next = try await self.chunks(synthesizer.synthesize("Sorry, go ahead."))
            #expect(next.flatMap { $0 } == FakeDeepgramServer.speech(for: "Sorry, go ahead."))
            #expect(server.speaks.count == 1)
            synthesizer.shutdown()
        }
    }

    @Test func aSinkHasTheAudioOnTheSocketsEventLoopAndARefusalClearsTheSocket() async throws {
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            let line = "Hello, this is Sam from Acme Solar."
            let sink = CollectingSink()
            try await synthesizer.synthesize(line, into: sink)
            #expect(sink.heard.samples == FakeDeepgramServer.speech(for: line))
            #expect(sink.heard.onEventLoop == sink.heard.chunks && sink.heard.chunks > 1)

            // Refused after its first chunk: the line ends there, the socket clears what it still has.
            let refusing = CollectingSink(accepting: 1)
            try await synthesizer.synthesize(String(repeating: "A rather long answer about panels. ", count: 20), into: refusing)
            #expect(refusing.heard.chunks == 2)
            try await eventually { server.speaks.first?.messages.last == "Clear" && synthesizer.idleSockets == 1 }
            #expect(server.speaks.count == 1)
            synthesizer.shutdown()
        }
    }

    @Test func eachLinesTimeToItsFirstAudioIsToldOnceBeforeThatAudio() async throws {
        try await self.withServer { server, base, logs in
            // The double starts each line's audio 50 ms after its Flush: the time is at least that.
            server.pauseBeforeSpeech(.milliseconds(50))
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            let (first, second) = (CollectingSink(), CollectingSink())
            try await synthesizer.synthesize("Hello, this is Sam from Acme Solar.", into: first)
            // The second line goes over the same socket.
            try await synthesizer.synthesize("Is now a good time?", into: second)
            #expect(server.speaks.count == 1)
            for sink in [first, second] {
                let heard = sink.heard
                #expect(heard.timesToFirstByte.count == 1)
                #expect(heard.timesToFirstByte.first.map { $0.time >= .milliseconds(50) && $0.chunksBefore == 0 } == true)
                #expect(heard.chunks > 1)
            }
            synthesizer.shutdown()
        }
    }

    @Test func aCallsLinesAreSpokenOnSocketsOnItsEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (first, second) = (group.next(), group.next())
        #expect(first !== second)
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), logger: logs.logger())
            let line = "Hello, this is Sam from Acme Solar."
            func speak(on loop: any EventLoop) async throws -> CollectingSink.Heard {
                let sink = CollectingSink(loop: loop)
                try await synthesizer.synthesize(line, into: sink)
                #expect(sink.heard.samples == FakeDeepgramServer.speech(for: line))
                return sink.heard
            }
            // The first line opens its socket on the call's loop.
            let opening = try await speak(on: first)
            #expect(opening.onItsLoop == opening.chunks && opening.chunks > 1)
            // A line on another loop takes the free socket, one hop away, and a socket is opened on its loop for the next.
            #expect(try await speak(on: second).onItsLoop == 0)
            try await eventually { synthesizer.idleSockets == 2 }
            for loop in [second, first, second] {
                let heard = try await speak(on: loop)
                #expect(heard.onItsLoop == heard.chunks)
            }
            #expect(server.speaks.count == 2)
            synthesizer.shutdown()
            try await eventually { server.speaks.allSatisfy { $0.messages.last == "Close" } }
        }
        try await group.shutdownGracefully()
    }

    @Test func aMessageSentOnTheSocketsLoopGoesAfterOneHandedOverBefore() async throws {
        try await self.withServer { server, base, logs in
            let url = try #require(URL(string: base.absoluteString.replacingOccurrences(of: "http:", with: "ws:") + "/v1/speak?model=aura-2-thalia-en"))
            let connection = try await WebSocketConnection.connect(to: url, headers: [("Authorization", "Token \(Self.key)")], logger: logs.logger())
            try await connection.eventLoop.submit {
                // Another thread hands `Speak` over to the loop, which is busy here; `Flush`, sent
                // on the loop meanwhile, must not overtake it.
                let handedOver = DispatchSemaphore(value: 0)
                Thread.detachNewThread {
                    connection.send(.text(#"{"type":"Speak","text":"First."}"#))
                    handedOver.signal()
                }
                handedOver.wait()
                connection.send(.text(#"{"type":"Flush"}"#))
            }.get()
            // On the loop with nothing handed over: out at once, in order.
            try await connection.eventLoop.submit {
                connection.send(.text(#"{"type":"Speak","text":"Second."}"#))
                connection.send(.text(#"{"type":"Flush"}"#))
            }.get()
            try await eventually { server.speaks.first?.messages.count == 4 }
            #expect(server.speaks.first?.messages == ["Speak:First.", "Flush", "Speak:Second.", "Flush"])
            connection.close()
        }
    }

    @Test func restSpeechIsRawPCMAndItsErrorsCarryDeepgramsCodes() async throws {
        try await self.withServer { server, base, logs in
            let synthesizer = DeepgramSynthesizer(
                endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), transport: .rest, restRetries: 0, logger: logs.logger())
            let audio = try await synthesizer.render("Thanks for your time, goodbye.")
            #expect(audio == FakeDeepgramServer.speech(for: "Thanks for your time, goodbye."))
            #expect(server.restSpeakRequests.first?["container"] == ["none"] && server.restSpeakRequests.first?["encoding"] == ["linear16"])
            for (status, code) in [(401, "INVALID_AUTH"), (429, "TOO_MANY_REQUESTS"), (500, "INTERNAL_SERVER_ERROR")] {
                server.failNextSpeak(status, code: code)
                await #expect(throws: DeepgramError.refused(status: status, code: code, message: "Injected failure.")) {
                    _ = try await synthesizer.render("Hello")
                }
            }
            let wrongKey = DeepgramSynthesizer(
                endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey("dg-wrong-0123456789abcdef0123456789ab")), transport: .rest, logger: logs.logger())
            do {
                _ = try await wrongKey.render("Hello")
                Issue.record("a wrong key was accepted")
            } catch let error as DeepgramError {
                #expect(error.isAuthentication && !"\(error)".contains("dg-wrong"))
            }
        }
    }

    @Test func aRestLineRefusedForAWhileIsTriedAgainButARefusedKeyIsNot() async throws {
        try await self.withServer { server, base, logs in
            let clock = ManualClock()
            let synthesizer = DeepgramSynthesizer(
                endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)), transport: .rest, clock: clock, logger: logs.logger())
            // A 500, then a 429: the third try speaks, after 0.25 s and 0.5 s.
            server.failNextSpeak(500, code: "INTERNAL_SERVER_ERROR")
            server.failNextSpeak(429, code: "TOO_MANY_REQUESTS")
            async let audio = synthesizer.render("Hello there.")
            try await eventually { clock.sleepers == 1 && server.restSpeakRequests.count == 1 }
            clock.advance(by: .milliseconds(249))
            #expect(server.restSpeakRequests.count == 1)
            clock.advance(by: .milliseconds(1))
            try await eventually { clock.sleepers == 1 && server.restSpeakRequests.count == 2 }
            clock.advance(by: .milliseconds(500))
            #expect(try await audio == FakeDeepgramServer.speech(for: "Hello there."))
            #expect(server.restSpeakRequests.count == 3)
            // Three 503s in a row: the line fails after the two retries.
            for _ in 0..<3 { server.failNextSpeak(503, code: "SERVICE_UNAVAILABLE") }
            let failed = Task { try await synthesizer.render("Hello again.") }
            try await eventually { clock.sleepers == 1 && server.restSpeakRequests.count == 4 }
            clock.advance(by: .milliseconds(250))
            try await eventually { clock.sleepers == 1 && server.restSpeakRequests.count == 5 }
            clock.advance(by: .milliseconds(500))
            await #expect(throws: DeepgramError.refused(status: 503, code: "SERVICE_UNAVAILABLE", message: "Injected failure.")) { _ = try await failed.value }
            #expect(server.restSpeakRequests.count == 6)
            // A refused key is final.
            server.failNextSpeak(401, code: "INVALID_AUTH")
            await #expect(throws: DeepgramError.refused(status: 401, code: "INVALID_AUTH", message: "Injected failure.")) {
                _ = try await synthesizer.render("Hello")
            }
            #expect(server.restSpeakRequests.count == 7 && clock.sleepers == 0)
        }
    }

    @Test func aGrantedTokenOpensTheSocketsAsBearer() async throws {
        try await self.withServer { server, base, logs in
            let grant = DeepgramTokenGrant(endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(Self.key)))
            let now = Date(timeIntervalSince1970: 1_790_000_000)
            let token = try await grant.grant(seconds: 60, now: now)
            #expect(token.expiresAt == now.addingTimeInterval(60) && token.value.split(separator: ".").count == 3)
            server.script("hello")
            let recognizer = DeepgramRecognizer(endpoint: DeepgramEndpoint(baseURL: base, credential: token.credential), logger: logs.logger())
            let session = try await recognizer.open(RecognitionOptions())
            session.close()
            #expect(server.listens.last?.authorization == "Bearer \(token.value)")
            await #expect(throws: DeepgramError.self) { _ = try await grant.grant(seconds: 7200) }
            let stranger = DeepgramTokenGrant(endpoint: DeepgramEndpoint(baseURL: base, credential: .accessToken("made-up")))
            do {
                _ = try await stranger.grant()
                Issue.record("a grant was made without the key")
            } catch let error as DeepgramError {
                #expect(error.isAuthentication)
            }
        }
    }
}

/// Keeps what a synthesiser hands over, and where; refuses after `accepting` chunks. With a
/// `loop`, the sink says its audio goes out there, as a call's does.
final class CollectingSink: SpeechSink {
    struct Heard {
        var samples: [Int16] = []
        var chunks = 0
        /// Chunks handed over on an event loop's thread.
        var onEventLoop = 0
        /// Chunks handed over on the sink's own loop.
        var onItsLoop = 0
        /// The service's times to the first audio it was told, each with the chunks it had by then.
        var timesToFirstByte: [(time: Duration, chunksBefore: Int)] = []
    }

    private let accepting: Int
    private let loop: (any EventLoop)?
    private let state = Mutex(Heard())

    init(accepting: Int = .max, loop: (any EventLoop)? = nil) {
        self.accepting = accepting
        self.loop = loop
    }

    var heard: Heard { self.state.withLock { $0 } }
    var executor: (any SerialExecutor)? { self.loop?.executor }

    func timeToFirstByte(_ time: Duration) {
        self.state.withLock { $0.timesToFirstByte.append((time, $0.chunks)) }
    }

    func play(_ samples: [Int16]) -> Bool {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let onItsLoop = current != nil && current === self.loop
        return self.state.withLock { heard in
            heard.chunks += 1
            if current != nil { heard.onEventLoop += 1 }
            if onItsLoop { heard.onItsLoop += 1 }
            guard heard.chunks <= self.accepting else { return false }
            heard.samples += samples
            return true
        }
    }
}
