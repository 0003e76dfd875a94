import CFlite
import Synchronization

/// flite with one of its US English voices (cmu_us_kal16 by default), resampled to 8 kHz.
///
/// pocketsphinx recognises kal16 far better than espeak-ng's voices, so the simulated
/// callers speak with it by default; the others give callers the recogniser was not tuned
/// to. It also serves as an alternative offline agent voice.
/// flite renders a whole line at once (about 2,500× faster than real time); the line is then
/// streamed in 100 ms chunks so consumers see the same shape as from streaming engines.
public struct FliteSynthesizer: SpeechSynthesizer {
    /// The voices Debian's flite ships.
    public enum Voice: String, Sendable, Hashable, CaseIterable {
        /// Male, 16 kHz diphones.
        case kal16
        /// Male, 8 kHz diphones.
        case kal
        /// Female, unit selection.
        case slt
        /// Male, unit selection.
        case rms
        /// Male, Scottish English, unit selection.
        case awb
    }

    public var flite: Voice

    public init(voice: Voice = .kal16) {
        self.flite = voice
    }

    public var voice: String { "flite cmu_us_\(self.flite.rawValue)" }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[Int16], any Error>.makeStream()
        let token = CancelToken()
        continuation.onTermination = { _ in token.cancel() }
        let voice = self.flite
        FliteEngine.shared.worker.submit {
            guard !token.isCancelled else { return continuation.finish() }
            guard let samples = FliteEngine.shared.render(text, voice: voice) else {
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

/// The process's flite voices and their thread.
final class FliteEngine: @unchecked Sendable {
    static let shared = FliteEngine()

    let worker = SerialWorker(name: "cex.flite")
    /// Touched only on the worker.
    private var initialised = false
    private var voices: [FliteSynthesizer.Voice: UnsafeMutablePointer<cst_voice>] = [:]

    /// Runs on the worker thread: the line as 8 kHz samples.
    func render(_ text: String, voice name: FliteSynthesizer.Voice) -> [Int16]? {
        if !self.initialised {
            flite_init()
            self.initialised = true
        }
        if self.voices[name] == nil {
            switch name {
            case .kal16: self.voices[name] = register_cmu_us_kal16(nil)
            case .kal: self.voices[name] = register_cmu_us_kal(nil)
            case .slt: self.voices[name] = register_cmu_us_slt(nil)
            case .rms: self.voices[name] = register_cmu_us_rms(nil)
            case .awb: self.voices[name] = register_cmu_us_awb(nil)
            }
        }
        guard let voice = self.voices[name], let wave = flite_text_to_wave(text, voice) else { return nil }
        defer { delete_wave(wave) }
        let count = Int(wave.pointee.num_samples)
        guard count > 0, let samples = wave.pointee.samples else { return [] }
        var resampler = Resampler(from: Int(wave.pointee.sample_rate), to: 8_000)
        return resampler.process(UnsafeBufferPointer(start: samples, count: count))
    }
}
