import Synchronization
import Testing

@testable import Speech

/// Says each text as one sample per character, in chunks of 10 a millisecond apart, and counts its renders.
final class CountingSynthesizer: SpeechSynthesizer {
    let renders = Mutex(0)
    var voice: String { "counting" }
    func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        self.renders.withLock { $0 += 1 }
        let samples = text.unicodeScalars.map { Int16($0.value) }
        // Made on demand, as a real engine does, so a listener that leaves stops it.
        let next = Mutex(0)
        return AsyncThrowingStream {
            try await Task.sleep(for: .milliseconds(1))
            return next.withLock { start -> [Int16]? in
                guard start < samples.count else { return nil }
                defer { start += 10 }
                return Array(samples[start..<min(samples.count, start + 10)])
            }
        }
    }
}

@Suite struct CachingSynthesizerTests {
    @Test func aLineSaidAgainComesFromTheCacheUnchanged() async throws {
        let base = CountingSynthesizer()
        let cache = CachingSynthesizer(base)
        let line = "I'm an automated assistant calling on behalf of Bright Solar."
        let first = try await cache.render(line)
        let second = try await cache.render(line)
        #expect(first == second && first.count == line.unicodeScalars.count)
        #expect(base.renders.withLock { $0 } == 1)
        #expect(cache.counts == (hits: 1, misses: 1))
    }

    @Test func aRenderCutShortIsNotKept() async throws {
        let base = CountingSynthesizer()
        let cache = CachingSynthesizer(base)
        let line = String(repeating: "a long line ", count: 10)
        for try await _ in cache.synthesize(line) { break }
        _ = try await cache.render(line)
        _ = try await cache.render(line)
        // The cut render was not stored, the whole one was.
        #expect(base.renders.withLock { $0 } == 2)
    }

    @Test func aSinkHearsALineAsItIsMadeAndOnlyALineHeardToTheEndIsKept() async throws {
        let base = CountingSynthesizer()
        let cache = CachingSynthesizer(base)
        let line = String(repeating: "a line heard through a sink ", count: 3)
        let expected = line.unicodeScalars.map { Int16($0.value) }
        // Refused after two chunks: not kept.
        let refusing = KeepingSink(accepting: 2)
        try await cache.synthesize(line, into: refusing)
        #expect(refusing.chunks.withLock { $0 } == [Array(expected[0..<10]), Array(expected[10..<20])])
        // Heard in full, chunk by chunk as the base makes them: kept.
        let whole = KeepingSink()
        try await cache.synthesize(line, into: whole)
        #expect(whole.chunks.withLock { $0.count == (expected.count + 9) / 10 && $0.joined().elementsEqual(expected) })
        // Then from the cache, at once and whole.
        let again = KeepingSink()
        try await cache.synthesize(line, into: again)
        #expect(again.chunks.withLock { $0 } == [expected])
        #expect(base.renders.withLock { $0 } == 2)
        #expect(cache.counts == (hits: 1, misses: 2))
    }

    @Test func theBaseMakesALineForTheSinksExecutor() async throws {
        /// Runs jobs where they are enqueued: only its identity matters here.
        final class Loop: SerialExecutor {
            func enqueue(_ job: consuming ExecutorJob) { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
        }
        /// Notes the executor of each sink it is given.
        final class Noting: SpeechSynthesizer {
            let seen = Mutex<[ObjectIdentifier?]>([])
            var voice: String { "noting" }
            func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> { AsyncThrowingStream { $0.finish() } }
            func synthesize(_ text: String, into sink: some SpeechSink) async throws {
                self.seen.withLock { $0.append(sink.executor.map { ObjectIdentifier($0) }) }
                _ = sink.play([1, 2, 3])
            }
        }
        let (loop, base) = (Loop(), Noting())
        let cache = CachingSynthesizer(base)
        try await cache.synthesize("the first line", into: KeepingSink(executor: loop))
        try await cache.synthesize("another line", into: KeepingSink())
        #expect(base.seen.withLock { $0 } == [ObjectIdentifier(loop), nil])
    }

    @Test func theLeastRecentlyUsedLineGoesFirstAndPreparedLinesStartWarm() async throws {
        let base = CountingSynthesizer()
        let cache = CachingSynthesizer(base, capacity: 25)
        await cache.prepare(["first line", "second line"])  // 10 + 11 samples
        #expect(base.renders.withLock { $0 } == 2)
        _ = try await cache.render("first line")  // a hit, now the most recent
        _ = try await cache.render("third one")  // 9 more: over 25, "second line" goes
        _ = try await cache.render("first line")
        #expect(base.renders.withLock { $0 } == 3)
        _ = try await cache.render("second line")
        #expect(base.renders.withLock { $0 } == 4)
    }
}

/// Keeps the chunks it is given; refuses after `accepting` of them.
final class KeepingSink: SpeechSink {
    let chunks = Mutex<[[Int16]]>([])
    private let accepting: Int
    let executor: (any SerialExecutor)?

    init(accepting: Int = .max, executor: (any SerialExecutor)? = nil) {
        self.accepting = accepting
        self.executor = executor
    }

    func play(_ samples: [Int16]) -> Bool {
        self.chunks.withLock { chunks in
            guard chunks.count < self.accepting else { return false }
            chunks.append(samples)
            return true
        }
    }
}
