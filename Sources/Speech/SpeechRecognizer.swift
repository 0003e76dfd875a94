/// What a streaming recogniser reports about the caller's audio, in order.
public enum RecognitionEvent: Sendable, Hashable {
    /// Speech began (used for barge-in). Not every recogniser reports it.
    case speechStarted
    /// A provisional transcript of the utterance so far; a later one replaces it.
    case interim(String)
    /// A settled piece of the current utterance. The utterance's text is its finals joined by spaces.
    case final(String)
    /// The utterance is over: the recogniser's own end-of-utterance decision, or the answer to `finalize()`.
    case utteranceEnd
}

/// Per-session hints for a recogniser.
public struct RecognitionOptions: Sendable, Hashable {
    /// BCP 47 language, e.g. `en-US`.
    public var language: String
    /// Words and phrases the caller is likely to say (the template's intents, objections, yes/no).
    /// Recognisers that can use them narrow their vocabulary; others ignore them.
    public var phrases: [String]

    public init(language: String = "en-US", phrases: [String] = []) {
        self.language = language
        self.phrases = phrases
    }
}

/// A streaming speech recogniser: fed 8 kHz mono 16-bit PCM as it arrives, it reports
/// speech onset, interim and final text, and the end of each utterance.
///
/// Network recognisers open a connection per session; local ones take a decoder.
public protocol SpeechRecognizer: Sendable {
    /// Opens a session for one call.
    func open(_ options: RecognitionOptions) async throws -> any RecognitionSession
}

/// One call's recognition stream.
public protocol RecognitionSession: AnyObject, Sendable {
    /// The events, in order. Finishes after `close()`, or with an error when the recogniser fails.
    var events: AsyncThrowingStream<RecognitionEvent, any Error> { get }
    /// Feeds the next 8 kHz samples. Never blocks: the work happens elsewhere.
    func feed(_ samples: [Int16])
    /// Asks for the current utterance to end now (the engine decided the turn is over).
    /// Yields `final` (when anything was heard) then `utteranceEnd`.
    func finalize()
    /// Ends the session and releases its resources; safe to call more than once.
    func close()
}

/// Errors of the speech engines. Descriptions never include audio or transcripts.
public struct SpeechError: Error, Hashable, CustomStringConvertible {
    private enum Code: Hashable {
        case engineUnavailable(String)
        case capacity(Int)
        case synthesisFailed(String)
    }

    private let code: Code

    /// The engine could not be started (missing model, bad configuration).
    public static func engineUnavailable(_ reason: String) -> Self { Self(code: .engineUnavailable(reason)) }
    /// All `limit` sessions of a local engine are in use.
    public static func capacity(_ limit: Int) -> Self { Self(code: .capacity(limit)) }
    /// The synthesiser reported an error.
    public static func synthesisFailed(_ reason: String) -> Self { Self(code: .synthesisFailed(reason)) }

    public var description: String {
        switch self.code {
        case .engineUnavailable(let reason): return "speech engine unavailable: \(reason)"
        case .capacity(let limit): return "speech engine at capacity (\(limit) sessions)"
        case .synthesisFailed(let reason): return "speech synthesis failed: \(reason)"
        }
    }
}
