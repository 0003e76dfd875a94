import Foundation
import Testing

@testable import Speech

@Suite(.timeLimit(.minutes(2))) struct OfflineSynthesisTests {
    @Test func espeakSpeaksAtEightKilohertz() async throws {
        let samples = try await EspeakSynthesizer().render("Hello, this is an automated assistant calling.")
        // About two and a half seconds of speech at 8 kHz, not silence.
        #expect((12_000...40_000).contains(samples.count))
        #expect(samples.contains { abs(Int($0)) > 3_000 })
    }

    @Test func espeakStartsWithTheFirstWordNotSilence() async throws {
        let samples = try await EspeakSynthesizer().render("Hello there.")
        #expect(samples.prefix(16).contains { $0.magnitude > 64 })
    }

    @Test func espeakStopsWhenTheListenerGoesAway() async throws {
        let long = String(repeating: "This sentence goes on for a while. ", count: 40)
        var received = 0
        for try await chunk in EspeakSynthesizer().synthesize(long) {
            received += chunk.count
            break
        }
        let whole = try await EspeakSynthesizer().render(long)
        #expect(received > 0)
        #expect(received < whole.count / 10)
    }

    @Test func fliteSpeaksAtEightKilohertz() async throws {
        let samples = try await FliteSynthesizer().render("Please call me tomorrow.")
        #expect((6_000...24_000).contains(samples.count))
        #expect(samples.contains { abs(Int($0)) > 3_000 })
    }
}

@Suite(.timeLimit(.minutes(2))) struct PocketSphinxTests {
    /// Feeds `samples` in 20 ms frames, then half a second of silence, and collects the events.
    static func recognise(_ samples: [Int16], with recognizer: PocketSphinxRecognizer, phrases: [String] = []) async throws -> [RecognitionEvent] {
        let session = try await recognizer.open(RecognitionOptions(phrases: phrases))
        let audio = [Int16](repeating: 0, count: 2_400) + samples + [Int16](repeating: 0, count: 8_000)
        for start in stride(from: 0, to: audio.count, by: 160) {
            session.feed(Array(audio[start..<min(audio.count, start + 160)]))
        }
        session.finalize()
        var events: [RecognitionEvent] = []
        for try await event in session.events {
            events.append(event)
            if event == .utteranceEnd, events.contains(where: { if case .final = $0 { true } else { false } }) { break }
        }
        session.close()
        return events
    }

    @Test func recognisesASynthesisedCallerLineAndReportsTheUtterance() async throws {
        let recognizer = PocketSphinxRecognizer()
        let line = try await FliteSynthesizer().render("please call me tomorrow")
        let phrases = ["please call me tomorrow", "call me back later", "remove me from your list", "not interested", "who is this"]
        let events = try await Self.recognise(line, with: recognizer, phrases: phrases)
        #expect(events.first == .speechStarted)
        let finals = events.compactMap { if case .final(let text) = $0 { text } else { nil } }
        let words = Set(finals.joined(separator: " ").split(separator: " ").map(String.init))
        // At least two of the four words survive the telephone band.
        #expect(words.intersection(["please", "call", "me", "tomorrow"]).count >= 2, "heard \(finals)")
        #expect(events.last == .utteranceEnd)
        try await eventuallyReleased(recognizer)
    }

    @Test func aReusedDecoderHearsALineAsAFreshOneDoes() async throws {
        // Each session starts from telephone-band cepstral means: neither the model's wideband
        // means (a fresh decoder) nor the last caller's (a pooled one) colour the first line.
        let recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: 1))
        let line = try await FliteSynthesizer().render("please remove me from your list")
        let other = try await FliteSynthesizer().render("what company are you calling from")
        let phrases = ["remove me", "take me off your list", "who is this", "call me back"]
        // One session at a time: each waits for the last to hand its decoder back.
        let fresh = try await Self.recognise(line, with: recognizer, phrases: phrases)
        try await eventuallyReleased(recognizer)
        _ = try await Self.recognise(other, with: recognizer, phrases: phrases)
        try await eventuallyReleased(recognizer)
        let reused = try await Self.recognise(line, with: recognizer, phrases: phrases)
        let finals = fresh.filter { if case .final = $0 { true } else { false } }
        #expect(finals == reused.filter { if case .final = $0 { true } else { false } })
        #expect(finals.contains { if case .final(let text) = $0 { text.contains("remove me") } else { false } }, "heard \(finals)")
        try await eventuallyReleased(recognizer)
    }

    @Test func refusesSessionsBeyondItsLimitAndReusesDecoders() async throws {
        let recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: 1))
        let first = try await recognizer.open(RecognitionOptions())
        await #expect(throws: SpeechError.capacity(1)) { _ = try await recognizer.open(RecognitionOptions()) }
        first.close()
        try await eventuallyReleased(recognizer)
        let second = try await recognizer.open(RecognitionOptions())
        second.close()
        try await eventuallyReleased(recognizer)
    }

    @Test func aMissingModelIsAClearError() async throws {
        let recognizer = PocketSphinxRecognizer(configuration: .init(modelDirectory: "/nonexistent"))
        await #expect(throws: SpeechError.self) { _ = try await recognizer.open(RecognitionOptions()) }
        try await eventuallyReleased(recognizer)
    }

    func eventuallyReleased(_ recognizer: PocketSphinxRecognizer) async throws {
        for _ in 0..<500 where recognizer.liveSessions > 0 { try await Task.sleep(for: .milliseconds(2)) }
        #expect(recognizer.liveSessions == 0)
    }
}
