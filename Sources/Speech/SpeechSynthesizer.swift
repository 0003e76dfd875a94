/// Text to speech: 8 kHz mono 16-bit PCM, streamed in chunks as it is made.
///
/// Cancelling the consuming task, or dropping the stream, stops synthesis mid-sentence.
public protocol SpeechSynthesizer: Sendable {
    /// A name for logs and records, e.g. `espeak-ng en-us`.
    var voice: String { get }
    /// The audio for `text`, in order. Chunk sizes vary; the stream finishes at the end of the text.
    func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error>
    /// Hands the audio for `text` to `sink` as it is made, and returns once all of it was handed
    /// over, the sink refused more, or the task was cancelled; throws when synthesis fails.
    ///
    /// The default pulls `synthesize(_:)` in the calling task. A synthesiser whose audio arrives
    /// on an event loop hands it to the sink right there, with no task in between.
    func synthesize(_ text: String, into sink: some SpeechSink) async throws
}

/// Where a line's audio goes as it is made.
public protocol SpeechSink: Sendable {
    /// Takes the line's next samples, in order, on whichever thread made them. False once the
    /// line is no longer wanted (cut by barge-in, or the call ended): synthesis should stop.
    func play(_ samples: [Int16]) -> Bool

    /// The serial executor the audio goes out on (a call's event loop), if there is one. A
    /// synthesiser whose audio arrives on a connection's event loop prefers a connection on this
    /// one: the audio then reaches the call without waking another thread. Nil by default.
    var executor: (any SerialExecutor)? { get }

    /// The service's time to the line's first audio: from the request's last byte out to the
    /// read that brought it. A cloud synthesiser tells it before the first `play`.
    func timeToFirstByte(_ time: Duration)
}

extension SpeechSink {
    public var executor: (any SerialExecutor)? { nil }
    public func timeToFirstByte(_ time: Duration) {}
}

extension SpeechSynthesizer {
    public func synthesize(_ text: String, into sink: some SpeechSink) async throws {
        try await sink.play(self.synthesize(text))
    }

    /// The whole utterance at once: for pre-rendering fixed lines and for tests.
    public func render(_ text: String) async throws -> [Int16] {
        var samples: [Int16] = []
        for try await chunk in self.synthesize(text) {
            samples.append(contentsOf: chunk)
        }
        return samples
    }
}

extension SpeechSink {
    /// Plays `audio` as it comes, until it ends or the sink refuses more.
    public func play(_ audio: AsyncThrowingStream<[Int16], any Error>) async throws {
        for try await samples in audio {
            guard self.play(samples) else { return }
        }
    }
}

extension AsyncThrowingStream where Element == [Int16], Failure == any Error {
    /// The audio `produce` hands to its sink, as a stream: `produce` runs in a task of its own,
    /// the sink refuses more once the stream's consumer has gone, and dropping the stream
    /// cancels the task.
    public static func pushed(by produce: @escaping @Sendable (StreamSink) async throws -> Void) -> Self {
        let (stream, continuation) = Self.makeStream()
        let task = Task {
            do {
                try await produce(StreamSink(continuation: continuation))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}

/// A stream's continuation as a sink: it refuses audio once the stream's consumer has gone.
public struct StreamSink: SpeechSink {
    let continuation: AsyncThrowingStream<[Int16], any Error>.Continuation

    public func play(_ samples: [Int16]) -> Bool {
        if case .terminated = self.continuation.yield(samples) { return false }
        return true
    }
}
