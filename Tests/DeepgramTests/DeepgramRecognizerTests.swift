import Deepgram
import Logging
import NIOCore
import ProviderDoubles
import Speech
import TestSupport
import Testing

/// The recogniser against the loopback Deepgram: real sockets, real frames, scripted faults.
@Suite(.timeLimit(.minutes(1))) struct DeepgramRecognizerTests {
    static let key = "dg-test-key-0123456789abcdef0123456789abcdef"

    func withServer(
        key: String = Self.key, idleTimeout: TimeAmount = .seconds(10),
        _ body: (FakeDeepgramServer, DeepgramRecognizer, ManualClock, LogCapture) async throws -> Void
    ) async throws {
        let server = FakeDeepgramServer(apiKey: Self.key, idleTimeout: idleTimeout)
        let base = try await server.start()
        let clock = ManualClock()
        let logs = LogCapture()
        let recognizer = DeepgramRecognizer(
            endpoint: DeepgramEndpoint(baseURL: base, credential: .apiKey(key)), clock: clock, logger: logs.logger())
        do {
            try await body(server, recognizer, clock, logs)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func bytes(_ samples: [Int16]) -> [UInt8] {
        samples.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xFF), UInt8(UInt16(bitPattern: $0) >> 8)] }
    }

    /// Feeds 20 ms frames as the engine does, and keeps all it fed: loud samples that differ
    /// from each other for speech (so a replay can be checked byte for byte), zeros for silence.
    final class Feeder {
        let session: any RecognitionSession
        var fed: [Int16] = []

        init(_ session: any RecognitionSession) {
            self.session = session
        }

        func speak(milliseconds: Int) {
            for _ in 0..<(milliseconds / 20) {
                let start = self.fed.count
                self.feed((start..<(start + 160)).map { Int16(truncatingIfNeeded: ($0 &* 7919) | 0x0800) })
            }
        }

        func pause(milliseconds: Int) {
            for _ in 0..<(milliseconds / 20) { self.feed([Int16](repeating: 0, count: 160)) }
        }

        private func feed(_ frame: [Int16]) {
            self.fed += frame
            self.session.feed(frame)
        }
    }

    func events(_ iterator: inout AsyncThrowingStream<RecognitionEvent, any Error>.Iterator, until last: RecognitionEvent) async throws -> [RecognitionEvent] {
        var events: [RecognitionEvent] = []
        while let event = try await iterator.next() {
            events.append(event)
            if event == last { break }
        }
        return events
    }

    @Test func twoUtterancesComeThroughAsTurnsEachEndedOnce() async throws {
        try await self.withServer { server, recognizer, _, _ in
            server.script("it's too expensive for us", "please remove me from your list")
            let session = try await recognizer.open(RecognitionOptions(language: "en-US", phrases: ["remove me", "too expensive"]))
            var iterator = session.events.makeAsyncIterator()
            let feeder = Feeder(session)
            feeder.speak(milliseconds: 600)
            feeder.pause(milliseconds: 400)
            #expect(try await self.events(&iterator, until: .utteranceEnd) == [
                .speechStarted, .interim("it's too"), .final("it's too expensive for us"), .utteranceEnd,
            ])
            feeder.speak(milliseconds: 600)
            feeder.pause(milliseconds: 400)
            #expect(try await self.events(&iterator, until: .utteranceEnd).suffix(2) == [.final("please remove me from your list"), .utteranceEnd])
            session.close()
            #expect(try await iterator.next() == nil)
            let listen = try #require(server.listens.first)
            #expect(listen.authorization == "Token \(Self.key)")
            #expect(listen.query["sample_rate"] == ["8000"] && listen.query["encoding"] == ["linear16"] && listen.query["language"] == ["en-US"])
            #expect(listen.query["keyterm"] == ["remove me", "too expensive"])
            #expect(listen.audioBytes == 2 * 16_000)
            #expect(listen.controls == ["CloseStream"])
        }
    }

    @Test func finalizeEndsTheTurnAtItsAnswerAndEmptyAudioIsNeverSent() async throws {
        try await self.withServer { server, recognizer, _, _ in
            server.script("yes that works")
            let session = try await recognizer.open(RecognitionOptions())
            var iterator = session.events.makeAsyncIterator()
            session.feed([])
            Feeder(session).speak(milliseconds: 300)
            #expect(try await self.events(&iterator, until: .interim("yes")) == [.speechStarted, .interim("yes")])
            session.finalize()
            #expect(try await self.events(&iterator, until: .utteranceEnd) == [.final("yes that works"), .utteranceEnd])
            session.close()
            #expect(try await iterator.next() == nil)
            #expect(server.listens[0].controls == ["Finalize", "CloseStream"])
        }
    }

    @Test func aRefusedKeyIsAnAuthenticationErrorThatQuotesNoKey() async throws {
        try await self.withServer(key: "dg-wrong-key-0123456789abcdef01234567") { _, recognizer, _, logs in
            do {
                _ = try await recognizer.open(RecognitionOptions())
                Issue.record("a wrong key was accepted")
            } catch let error as DeepgramError {
                #expect(error == .refused(status: 401, code: "INVALID_AUTH", message: "Invalid credentials."))
                #expect(error.isAuthentication && !"\(error)".contains("dg-wrong"))
            }
            #expect(!logs.all.joined().contains("dg-wrong"))
        }
    }

    @Test(arguments: ["dg-wrong-key-0123456789abcdef01234567", "short-key"])
    func anUpstreamThatEchoesTheKeyInItsErrorNeverPutsItInTheErrorOrTheLog(key: String) async throws {
        try await self.withServer(key: key) { server, recognizer, _, logs in
            server.echoAuthorizationInRefusals()
            do {
                _ = try await recognizer.open(RecognitionOptions())
                Issue.record("a wrong key was accepted")
            } catch let error as DeepgramError {
                #expect(error.isAuthentication)
                #expect(!"\(error)".contains(key), "\(error)")
                #expect("\(error)".contains("[redacted]"), "\(error)")
                #expect(!String(reflecting: error).contains(key))
            }
            #expect(!logs.all.joined().contains(key))
        }
    }

    @Test func keepAliveGoesOutOnlyWhenNoAudioFlowed() async throws {
        try await self.withServer { server, recognizer, clock, _ in
            let session = try await recognizer.open(RecognitionOptions())
            try await eventually { clock.sleepers == 1 }
            Feeder(session).speak(milliseconds: 100)
            clock.advance(by: .seconds(4))
            try await eventually { clock.sleepers == 1 }
            clock.advance(by: .seconds(4))
            try await eventually { server.listens.first?.controls == ["KeepAlive"] }
            session.close()
        }
    }

    @Test func aDroppedSocketIsOpenedAgainWithTheLastSecondOfAudio() async throws {
        try await self.withServer { server, recognizer, _, logs in
            server.script("i rent my house", "so it is not for me")
            // Cut 0.3 s into the second utterance: 0.6 s speech + 0.4 s pause + 0.3 s speech.
            server.dropNextSocket(afterBytes: 20_800)
            let session = try await recognizer.open(RecognitionOptions())
            var iterator = session.events.makeAsyncIterator()
            let feeder = Feeder(session)
            feeder.speak(milliseconds: 600)
            feeder.pause(milliseconds: 400)
            #expect(try await self.events(&iterator, until: .utteranceEnd).suffix(2) == [.final("i rent my house"), .utteranceEnd])
            feeder.speak(milliseconds: 900)
            try await eventually { server.listens.count == 2 }
            #expect(server.listens[0].audio == Self.bytes(Array(feeder.fed.prefix(10_400))))
            // The new socket gets the last second fed, then what follows; it hears the cut utterance again.
            try await eventually { server.listens[1].audioBytes >= 16_000 }
            #expect(Array(server.listens[1].audio.prefix(16_000)) == Self.bytes(Array(feeder.fed.suffix(8000))))
            feeder.pause(milliseconds: 400)
            let after = try await self.events(&iterator, until: .utteranceEnd)
            #expect(after.last == .utteranceEnd && after.contains(.final("so it is not for me")))
            #expect(logs.all.contains { $0.contains("opening another") })
            session.close()
        }
    }

    @Test func anIdleCloseFromDeepgramEndsTheStreamWithItsReasonAfterTheRetries() async throws {
        try await self.withServer(idleTimeout: .milliseconds(100)) { server, recognizer, _, _ in
            let session = try await recognizer.open(RecognitionOptions())
            var iterator = session.events.makeAsyncIterator()
            do {
                while try await iterator.next() != nil {}
                Issue.record("the stream ended without an error")
            } catch let error as DeepgramError {
                #expect(error == .closed(code: 1011, reason: "NET-0001"))
                #expect("\(error)".contains("no audio reached Deepgram for 10 s"))
            }
            #expect(server.listens.count == 3)
        }
    }
}
