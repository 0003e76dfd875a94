import CFlite
import Synchronization

/// flite with the cmu_us_kal16 voice, resampled from 16 kHz to 8 kHz.
///
/// pocketsphinx recognises this voice far better than espeak-ng's, so the simulated
/// callers speak with it; it also serves as an alternative offline agent voice.
/// flite renders a whole line at once (about 2,500× faster than real time); the line is then
/// streamed in 100 ms chunks so consumers see the same shape as from streaming engines.
public struct FliteSynthesizer: SpeechSynthesizer {
    public init() {}

    public var voice: String { "flite cmu_us_kal16" }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[Int16], any Error>.makeStream()
        let token = CancelToken()
        continuation.onTermination = { _ in token.cancel() }
        FliteEngine.shared.worker.submit {
            guard !token.isCancelled else { return continuation.finish() }
            guard let samples = FliteEngine.shared.render(text) else {
                return continuation.finish(throwing: SpeechError.synthesisFailed("flite returned no audio"))
            }
            var offset = 0
            while offset < samples.count && !token.isCancelled {
                let end = min(samples.count, offset + 800)
                continuation.yield(Array(samples[offset..<end]))
                offset = end
            }
            continuation.finish()
        }
        return stream
    }
}

/// A cancellation flag shared between a consumer and a worker.
final class CancelToken: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { self.flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { self.flag.load(ordering: .relaxed) }
}

/// The process's flite voice and its thread.
final class FliteEngine: @unchecked Sendable {
    static let shared = FliteEngine()

    let worker = SerialWorker(name: "cex.flite")
    /// Touched only on the worker.
    private var voice: UnsafeMutablePointer<cst_voice>?

    /// Runs on the worker thread: the line as 8 kHz samples.
    func render(_ text: String) -> [Int16]? {
        if self.voice == nil {
            flite_init()
            self.voice = register_cmu_us_kal16(nil)
        }
        guard let voice = self.voice, let wave = flite_text_to_wave(text, voice) else { return nil }
        defer { delete_wave(wave) }
        let count = Int(wave.pointee.num_samples)
        guard count > 0, let samples = wave.pointee.samples else { return [] }
        var resampler = Resampler(from: Int(wave.pointee.sample_rate), to: 8_000)
        return resampler.process(UnsafeBufferPointer(start: samples, count: count))
    }
}
