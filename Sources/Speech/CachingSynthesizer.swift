import Synchronization

/// Keeps the audio of lines said again and again (the disclosure, closings, "are you still
/// there?") so they start at once and cost nothing the second time; any synthesiser can be
/// wrapped. Only complete renders are kept; the least recently used go first beyond `capacity`
/// samples. Lines longer than `longestLine` characters pass through uncached.
public final class CachingSynthesizer: SpeechSynthesizer {
    private struct Cache {
        var entries: [String: (samples: [Int16], used: UInt64)] = [:]
        var samples = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    public let base: any SpeechSynthesizer
    /// Samples kept at most (8 kHz, 2 bytes each): the default 4,000,000 is 8 MB, about 8 minutes of speech.
    public let capacity: Int
    public let longestLine: Int
    private let cache = Mutex(Cache())

    public init(_ base: any SpeechSynthesizer, capacity: Int = 4_000_000, longestLine: Int = 400) {
        self.base = base
        self.capacity = capacity
        self.longestLine = longestLine
    }

    public var voice: String { self.base.voice }

    /// Lines served from the cache, and synthesised.
    public var counts: (hits: Int, misses: Int) { self.cache.withLock { ($0.hits, $0.misses) } }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        .pushed { try await self.synthesize(text, into: $0) }
    }

    /// A cached line is played at once; any other goes to the base synthesiser's sink as it is
    /// made (on its event loop, for a streaming one), and is kept when it was heard to the end.
    public func synthesize(_ text: String, into sink: some SpeechSink) async throws {
        guard text.count <= self.longestLine else { return try await self.base.synthesize(text, into: sink) }
        if let cached = self.cached(text) {
            _ = sink.play(cached)
            return
        }
        let recording = RecordingSink(sink)
        try await self.base.synthesize(text, into: recording)
        if let samples = recording.samples, !Task.isCancelled { self.store(text, samples) }
    }

    /// The line's audio when it is kept (counted as a hit), else nil (counted as a miss).
    private func cached(_ text: String) -> [Int16]? {
        self.cache.withLock { cache in
            guard let entry = cache.entries[text] else {
                cache.misses += 1
                return nil
            }
            cache.clock += 1
            cache.entries[text]?.used = cache.clock
            cache.hits += 1
            return entry.samples
        }
    }

    /// Renders `lines` now, so their first use starts at once.
    public func prepare(_ lines: [String]) async {
        for line in lines where line.count <= self.longestLine {
            guard self.cache.withLock({ $0.entries[line] == nil }) else { continue }
            if let samples = try? await self.base.render(line) { self.store(line, samples) }
        }
    }

    private func store(_ text: String, _ samples: [Int16]) {
        guard samples.count <= self.capacity else { return }
        self.cache.withLock { cache in
            cache.clock += 1
            if let old = cache.entries.updateValue((samples, cache.clock), forKey: text) { cache.samples -= old.samples.count }
            cache.samples += samples.count
            while cache.samples > self.capacity, let oldest = cache.entries.min(by: { $0.value.used < $1.value.used }) {
                cache.entries[oldest.key] = nil
                cache.samples -= oldest.value.samples.count
            }
        }
    }
}

/// Passes a line's audio on and keeps a copy, unless the sink refused part of it.
private final class RecordingSink<Base: SpeechSink>: SpeechSink {
    private let base: Base
    private let kept = Mutex<(samples: [Int16], refused: Bool)>(([], false))

    init(_ base: Base) {
        self.base = base
    }

    func play(_ samples: [Int16]) -> Bool {
        let accepted = self.base.play(samples)
        self.kept.withLock { kept in
            if accepted { kept.samples.append(contentsOf: samples) } else { kept.refused = true }
        }
        return accepted
    }

    var executor: (any SerialExecutor)? { self.base.executor }

    func timeToFirstByte(_ time: Duration) { self.base.timeToFirstByte(time) }

    /// Everything the sink took, when it took all it was given.
    var samples: [Int16]? {
        self.kept.withLock { $0.refused ? nil : $0.samples }
    }
}
