import CPocketSphinx
import Foundation
import Synchronization

/// The offline recogniser: pocketsphinx through its C library, streaming.
///
/// Its only English model is 16 kHz, so the 8 kHz call audio is upsampled with a stateful
/// resampler before decoding. A decoder costs about 90 MB and 0.4 s to load and a third of
/// a core while the caller speaks, so decoders are pooled, each live session has its own
/// thread, and no more than `maximumSessions` run at once.
public final class PocketSphinxRecognizer: SpeechRecognizer {
    public struct Configuration: Sendable, Hashable {
        /// The model directory: `en-us/` (acoustic model), `en-us.lm.bin`, `cmudict-en-us.dict`.
        public var modelDirectory: String
        /// Live sessions at most; `open` throws `SpeechError.capacity` beyond it.
        public var maximumSessions: Int
        /// Silence, in 10 ms frames, after which pocketsphinx ends an utterance by itself.
        public var postSpeechFrames: Int

        public init(modelDirectory: String = "/usr/share/pocketsphinx/model/en-us", maximumSessions: Int = 4, postSpeechFrames: Int = 50) {
            self.modelDirectory = modelDirectory
            self.maximumSessions = maximumSessions
            self.postSpeechFrames = postSpeechFrames
        }
    }

    public let configuration: Configuration
    private struct Pool {
        var idle: [PocketSphinxDecoder] = []
        var live = 0
    }
    private let pool = Mutex(Pool())
    /// The dictionary's words, read on first need.
    private let dictionaryWords = Mutex<Set<String>?>(nil)

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    public func open(_ options: RecognitionOptions) async throws -> any RecognitionSession {
        let reused: PocketSphinxDecoder?? = self.pool.withLock { pool in
            guard pool.live < self.configuration.maximumSessions else { return .none }
            pool.live += 1
            return .some(pool.idle.popLast())
        }
        guard case .some(let idle) = reused else { throw SpeechError.capacity(self.configuration.maximumSessions) }
        let session = PocketSphinxSession(recognizer: self)
        do {
            try await session.start(decoder: idle, options: options)
        } catch {
            session.close()
            throw error
        }
        return session
    }

    /// Loads decoders into the pool now, up to `count` idle ones (each takes about 0.4 s and
    /// 90 MB), so the first calls do not wait for a model to load.
    public func prepare(_ count: Int = 1) async throws {
        let wanted = min(count, self.configuration.maximumSessions) - self.pool.withLock { $0.idle.count }
        guard wanted > 0 else { return }
        let worker = SerialWorker(name: "cex.pocketsphinx.load")
        defer { worker.stop() }
        for _ in 0..<wanted {
            let decoder = try await worker.run { [configuration = self.configuration] in try PocketSphinxDecoder(configuration: configuration) }
            self.pool.withLock { pool in
                if pool.idle.count < self.configuration.maximumSessions { pool.idle.append(decoder) }
            }
        }
    }

    /// Sessions currently open.
    public var liveSessions: Int { self.pool.withLock { $0.live } }

    /// Whether the pronunciation dictionary has `word`. Runs on a session's worker.
    func knows(_ word: String) -> Bool {
        self.dictionaryWords.withLock { words in
            if words == nil {
                let path = "\(self.configuration.modelDirectory)/cmudict-en-us.dict"
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                var loaded = Set<String>()
                for line in text.split(separator: "\n") {
                    guard let word = line.split(separator: " ", maxSplits: 1).first, !word.hasSuffix(")") else { continue }
                    loaded.insert(String(word))
                }
                words = loaded
            }
            return words!.contains(word)
        }
    }

    /// Takes a session's decoder back; nil when the session never got one.
    func release(_ decoder: PocketSphinxDecoder?) {
        self.pool.withLock { pool in
            pool.live -= 1
            if let decoder, pool.idle.count < self.configuration.maximumSessions { pool.idle.append(decoder) }
        }
    }
}

/// One pocketsphinx decoder and its configuration. Used by one thread at a time.
final class PocketSphinxDecoder: @unchecked Sendable {
    let decoder: OpaquePointer
    private let config: OpaquePointer
    /// Phrase models already loaded into this decoder, by name.
    private var phraseSearches: Set<String> = []

    init(configuration: PocketSphinxRecognizer.Configuration) throws {
        let model = configuration.modelDirectory
        guard FileManager.default.fileExists(atPath: "\(model)/en-us.lm.bin") else {
            throw SpeechError.engineUnavailable("pocketsphinx model not found in \(model) (install pocketsphinx-en-us)")
        }
        let arguments = [
            "cex", "-hmm", "\(model)/en-us", "-lm", "\(model)/en-us.lm.bin", "-dict", "\(model)/cmudict-en-us.dict",
            "-samprate", "16000", "-vad_postspeech", "\(configuration.postSpeechFrames)", "-logfn", "/dev/null",
        ]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        defer { argv.forEach { free($0) } }
        let config = argv.withUnsafeMutableBufferPointer { cmd_ln_parse_r(nil, ps_args(), Int32($0.count), $0.baseAddress, 1) }
        guard let config else { throw SpeechError.engineUnavailable("pocketsphinx rejected its configuration") }
        guard let decoder = ps_init(config) else {
            cmd_ln_free_r(config)
            throw SpeechError.engineUnavailable("pocketsphinx could not load the model in \(model)")
        }
        self.config = config
        self.decoder = decoder
    }

    /// Cepstral means of telephone speech: 8 kHz audio upsampled to 16 kHz, so nothing above
    /// 4 kHz. The model's initial means are for wideband speech, and with them the first
    /// utterance a decoder hears over the phone band is mostly lost ("please remove me from
    /// your list" came out as "when three do who"). These are the live means pocketsphinx
    /// converged to over the `SpeechAccuracy` benchmark's caller lines; each session starts
    /// from them and adapts to its caller.
    static let telephoneCepstralMean: [Float] = [38.08, 35.09, -29.83, 31.96, -14.04, -12.29, 19.82, -24.94, 6.95, 2.31, -7.37, 11.52, -9.19]

    /// Starts an utterance from the telephone-band cepstral means and fresh noise statistics,
    /// forgetting the last caller's line: every call is heard the same, whatever came before it.
    func startFresh() {
        ps_start_stream(self.decoder)
        if let feat = ps_get_feat(self.decoder), let cmn = feat.pointee.cmn_struct, cmn.pointee.veclen == Self.telephoneCepstralMean.count {
            Self.telephoneCepstralMean.withUnsafeBufferPointer { cmn_live_set(cmn, $0.baseAddress) }
        }
        ps_start_utt(self.decoder)
    }

    /// Switches to a search narrowed to `phrases` (built once per decoder), or back to the full model.
    func useSearch(for phrases: [String], knows: (String) -> Bool) throws {
        guard !phrases.isEmpty else {
            ps_set_search(self.decoder, "_default")
            return
        }
        let name = "phrases-\(phrases.joined(separator: "|").hashValue)"
        if !self.phraseSearches.contains(name) {
            let model = PhraseLanguageModel(phrases: phrases, isKnown: knows)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("cex-\(UUID().uuidString).arpa").path
            try model.arpa.write(toFile: path, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard ps_set_lm_file(self.decoder, name, path) == 0 else {
                throw SpeechError.engineUnavailable("pocketsphinx rejected the phrase model")
            }
            self.phraseSearches.insert(name)
        }
        ps_set_search(self.decoder, name)
    }

    deinit {
        ps_free(self.decoder)
        cmd_ln_free_r(self.config)
    }
}

/// One call's pocketsphinx stream. All decoding happens on the session's own thread.
final class PocketSphinxSession: RecognitionSession, @unchecked Sendable {
    let events: AsyncThrowingStream<RecognitionEvent, any Error>
    private let continuation: AsyncThrowingStream<RecognitionEvent, any Error>.Continuation
    private let recognizer: PocketSphinxRecognizer
    private let worker = SerialWorker(name: "cex.pocketsphinx")
    private let closed = Atomic<Bool>(false)

    // Touched only on the worker thread.
    private var decoder: PocketSphinxDecoder?
    private var resampler = Resampler(from: 8_000, to: 16_000)
    private var inSpeech = false
    private var heardSpeech = false
    private var framesSinceInterim = 0
    private var lastInterim = ""

    /// Interim hypotheses at most every 200 ms of speech: `ps_get_hyp` searches the lattice.
    private static let interimEvery = 10

    init(recognizer: PocketSphinxRecognizer) {
        self.recognizer = recognizer
        (self.events, self.continuation) = AsyncThrowingStream.makeStream()
    }

    deinit {
        // A session dropped without `close()`: no job holds it any more, so this is the only thread here.
        if !self.closed.load(ordering: .relaxed) {
            self.recognizer.release(self.decoder)
            self.continuation.finish()
            self.worker.stop()
        }
    }

    func start(decoder: PocketSphinxDecoder?, options: RecognitionOptions) async throws {
        try await self.worker.run { [self] in
            let decoder = try decoder ?? PocketSphinxDecoder(configuration: self.recognizer.configuration)
            self.decoder = decoder
            try decoder.useSearch(for: options.phrases, knows: self.recognizer.knows)
            decoder.startFresh()
        }
    }

    func feed(_ samples: [Int16]) {
        self.worker.submit { [self] in self.process(samples) }
    }

    func finalize() {
        self.worker.submit { [self] in self.endUtterance() }
    }

    func close() {
        guard !self.closed.exchange(true, ordering: .relaxed) else { return }
        self.worker.submit { [self] in
            if let decoder = self.decoder {
                ps_end_utt(decoder.decoder)
            }
            self.recognizer.release(self.decoder)
            self.decoder = nil
            self.continuation.finish()
        }
        self.worker.stop()
    }

    private func process(_ samples: [Int16]) {
        guard let decoder = self.decoder?.decoder else { return }
        let upsampled = self.resampler.process(samples)
        _ = upsampled.withUnsafeBufferPointer { ps_process_raw(decoder, $0.baseAddress, $0.count, 0, 0) }
        let nowInSpeech = ps_get_in_speech(decoder) != 0
        if nowInSpeech && !self.inSpeech {
            self.heardSpeech = true
            self.continuation.yield(.speechStarted)
        }
        if nowInSpeech {
            self.framesSinceInterim += 1
            if self.framesSinceInterim >= Self.interimEvery {
                self.framesSinceInterim = 0
                let text = ps_get_hyp(decoder, nil).map { String(cString: $0) } ?? ""
                if !text.isEmpty && text != self.lastInterim {
                    self.lastInterim = text
                    self.continuation.yield(.interim(text))
                }
            }
        }
        let ended = self.inSpeech && !nowInSpeech
        self.inSpeech = nowInSpeech
        if ended { self.endUtterance() }
    }

    private func endUtterance() {
        guard let decoder = self.decoder?.decoder else { return }
        if self.heardSpeech {
            ps_end_utt(decoder)
            let text = ps_get_hyp(decoder, nil).map { String(cString: $0) } ?? ""
            if !text.isEmpty { self.continuation.yield(.final(text)) }
            ps_start_utt(decoder)
        }
        self.continuation.yield(.utteranceEnd)
        self.inSpeech = false
        self.heardSpeech = false
        self.framesSinceInterim = 0
        self.lastInterim = ""
    }
}
