import CEspeakNG
import Foundation
import Synchronization

/// The offline agent voice: espeak-ng through its C library, synthesised in memory and
/// resampled from 22,050 Hz to 8 kHz with a stateful resampler, streamed as it is made.
///
/// espeak-ng keeps global state, so every request in the process runs on one dedicated
/// thread; it synthesises about a thousand times faster than real time.
public struct EspeakSynthesizer: SpeechSynthesizer {
    /// An espeak-ng voice name, e.g. `en-us`.
    public var voiceName: String
    /// Words per minute (80–450).
    public var wordsPerMinute: Int
    /// Base pitch, 0–100 (espeak-ng's default is 50).
    public var pitch: Int

    public init(voiceName: String = "en-us", wordsPerMinute: Int = 165, pitch: Int = 50) {
        self.voiceName = voiceName
        self.wordsPerMinute = wordsPerMinute
        self.pitch = pitch
    }

    public var voice: String { "espeak-ng \(self.voiceName)" }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[Int16], any Error>.makeStream()
        let request = EspeakRequest(continuation: continuation)
        continuation.onTermination = { _ in request.token.cancel() }
        let voiceName = self.voiceName, rate = self.wordsPerMinute, pitch = self.pitch
        EspeakEngine.shared.worker.submit {
            EspeakEngine.shared.synthesize(text, voiceName: voiceName, rate: rate, pitch: pitch, request: request)
        }
        return stream
    }
}

/// One synthesis request, reached from the C callback through `user_data`.
final class EspeakRequest: @unchecked Sendable {
    let continuation: AsyncThrowingStream<[Int16], any Error>.Continuation
    /// Set when the consumer goes away; the callback then asks espeak-ng to stop.
    let token = CancelToken()
    /// Touched only on the espeak-ng thread.
    var resampler = Resampler(from: 22_050, to: 8_000)
    /// Still in the silence espeak-ng puts before the first word (about 60 ms), which is dropped:
    /// a reply should be heard the moment it starts.
    var leadingSilence = true

    init(continuation: AsyncThrowingStream<[Int16], any Error>.Continuation) {
        self.continuation = continuation
    }
}

/// The process's espeak-ng instance and its thread.
final class EspeakEngine: Sendable {
    static let shared = EspeakEngine()

    let worker = SerialWorker(name: "cex.espeak-ng")
    /// espeak-ng's output rate, or nil when it failed to start. Written once on the worker.
    private let sampleRate = Mutex<Int32?>(nil)
    private let started = Atomic<Bool>(false)

    /// Runs on the worker thread.
    func synthesize(_ text: String, voiceName: String, rate: Int, pitch: Int, request: EspeakRequest) {
        if !self.started.exchange(true, ordering: .relaxed) {
            let rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 100, nil, 0)
            if rate > 0 {
                espeak_SetSynthCallback(espeakCallback)
                self.sampleRate.withLock { $0 = rate }
            }
        }
        guard let nativeRate = self.sampleRate.withLock({ $0 }) else {
            request.continuation.finish(throwing: SpeechError.engineUnavailable("espeak-ng did not initialise (is espeak-ng-data installed?)"))
            return
        }
        if nativeRate != 22_050 { request.resampler = Resampler(from: Int(nativeRate), to: 8_000) }
        guard espeak_SetVoiceByName(voiceName) == EE_OK else {
            request.continuation.finish(throwing: SpeechError.engineUnavailable("espeak-ng has no voice named \(voiceName)"))
            return
        }
        espeak_SetParameter(espeakRATE, Int32(rate), 0)
        espeak_SetParameter(espeakPITCH, Int32(pitch), 0)
        let box = Unmanaged.passRetained(request)
        defer { box.release() }
        let result = text.withCString { pointer in
            espeak_Synth(pointer, strlen(pointer) + 1, 0, POS_CHARACTER, 0, UInt32(espeakCHARS_UTF8), nil, box.toOpaque())
        }
        if result != EE_OK && !request.token.isCancelled {
            request.continuation.finish(throwing: SpeechError.synthesisFailed("espeak-ng error \(result.rawValue)"))
            return
        }
        request.continuation.finish()
    }
}

/// espeak-ng's synthesis callback: resample the chunk and pass it on; returning 1 stops synthesis.
private func espeakCallback(_ wave: UnsafeMutablePointer<Int16>?, _ count: Int32, _ events: UnsafeMutablePointer<espeak_EVENT>?) -> Int32 {
    guard let userData = events?.pointee.user_data else { return 0 }
    let request = Unmanaged<EspeakRequest>.fromOpaque(userData).takeUnretainedValue()
    if request.token.isCancelled { return 1 }
    guard let wave, count > 0 else { return 0 }
    var samples = request.resampler.process(UnsafeBufferPointer(start: wave, count: Int(count)))
    if request.leadingSilence {
        guard let first = samples.firstIndex(where: { $0.magnitude > 64 }) else { return 0 }
        samples.removeFirst(first)
        request.leadingSilence = false
    }
    if !samples.isEmpty { request.continuation.yield(samples) }
    return 0
}
