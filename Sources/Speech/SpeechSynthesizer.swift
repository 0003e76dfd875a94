/// Text to speech: 8 kHz mono 16-bit PCM, streamed in chunks as it is made.
///
/// Cancelling the consuming task, or dropping the stream, stops synthesis mid-sentence.
public protocol SpeechSynthesizer: Sendable {
    /// A name for logs and records, e.g. `espeak-ng en-us`.
    var voice: String { get }
    /// The audio for `text`, in order. Chunk sizes vary; the stream finishes at the end of the text.
    func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error>
}

extension SpeechSynthesizer {
    /// The whole utterance at once: for pre-rendering fixed lines and for tests.
    public func render(_ text: String) async throws -> [Int16] {
        var samples: [Int16] = []
        for try await chunk in self.synthesize(text) {
            samples.append(contentsOf: chunk)
        }
        return samples
    }
}
