import Foundation

/// A campaign as its file describes it, checked: every path resolved, every value in range.
public struct Campaign: Sendable, Hashable {
    public struct AMI: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var username: String
        /// The environment variable holding the secret.
        public var secretEnvironment: String
        /// A file holding the secret; wins over the environment.
        public var secretFile: String?
        /// How long the runner tries to reach AMI before it gives up (`ami.give_up_after`).
        public var giveUpAfter: Duration = .seconds(60)
    }

    /// What the answered channel runs.
    public enum Answered: Sendable, Hashable {
        /// A dialplan location, e.g. `ai-outbound,s,1` (runs AMD when configured, then AudioSocket).
        case dialplan(context: String, exten: String, priority: String)
        /// The AudioSocket application straight away: `Application: AudioSocket`, `Data: <uuid>,<engine>`.
        case audioSocket
    }

    /// Where the conversation engine runs.
    public enum Engine: Sendable, Hashable {
        /// In the campaign process, listening here for Asterisk's AudioSocket connections.
        case embedded(host: String, port: Int)
        /// A running `cex engine serve` that reads the same store.
        case shared(host: String, port: Int)

        public var host: String {
            switch self {
            case .embedded(let host, _), .shared(let host, _): return host
            }
        }
        public var port: Int {
            switch self {
            case .embedded(_, let port), .shared(_, let port): return port
            }
        }
    }

    public var name: String
    /// The campaign file's path.
    public var file: String
    public var leads: [String]
    /// The pitch template's path.
    public var template: String
    public var callerID: String
    /// ISO 3166 region for numbers written without a country code.
    public var defaultCountry: String
    /// The zone of leads with neither a timezone column nor a NANP area code; nil fails them closed.
    public var defaultTimeZone: String?
    /// Lead column → CSV header, where the header is not one of the usual names.
    public var columns: [String: String]
    public var ami: AMI
    /// The Originate channel, `{phone}` replaced by the E.164 number (`{digits}`: without the "+").
    public var dial: String
    public var answered: Answered
    public var engine: Engine
    public var amd: Bool
    public var maxConcurrentCalls: Int
    public var callsPerSecond: Double
    public var ringTimeout: Duration
    /// How long live calls may go on after a stop request before they are hung up (`drain`).
    public var drain: Duration = .seconds(30)
    public var window: CallingWindow
    public var retry: RetryPolicy
    public var dnc: [String]
    /// When set, only these numbers are ever dialled (a test run against real phones).
    public var testNumbers: Set<PhoneNumber>?
    /// The abandon rate (abandoned / answered by a person) above which the campaign pauses itself, in percent.
    public var abandonLimitPercent: Double
    public var providers: ProviderSettings
    /// What the model's post-call analysis also fills in for this campaign, in the file's order.
    public var analysisFields: [AnalysisField]

    /// The dial string for a number.
    public func channel(for number: PhoneNumber) -> String {
        self.dial.replacingOccurrences(of: "{phone}", with: number.e164)
            .replacingOccurrences(of: "{digits}", with: String(number.e164.dropFirst()))
    }
}

/// A campaign's own item of the post-call analysis (`analysis_fields:` in its file): the model
/// fills it in from the conversation, and the report gets a column of that name.
public struct AnalysisField: Sendable, Hashable, Codable {
    public var name: String
    /// What the model is told to look for.
    public var description: String

    public init(name: String, description: String) {
        self.name = name
        self.description = description
    }

    /// Names a field cannot take: the report's own columns, and the analysis's own items.
    public static let reservedNames: Set<String> = [
        "phone", "name", "attempts", "final_outcome", "retries_exhausted", "last_dial_result", "talk_seconds", "sentiment", "sentiment_score",
        "objective", "motive", "objections", "callback_at", "next_attempt_at", "summary", "outcome", "callback_time", "custom",
    ]

    /// The fields as the analyser takes them: name → description.
    public static func descriptions(_ fields: [AnalysisField]) -> [String: String] {
        Dictionary(fields.map { ($0.name, $0.description) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A problem in a campaign file: where it is and what is wrong.
public struct CampaignFileError: Error, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int?, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var location = self.file
        if let line { location += ":\(line)" }
        if let field { return "\(location): \(field): \(self.message)" }
        return "\(location): \(self.message)"
    }
}

/// Which speech and language providers a campaign's calls use, and their options. Keys and
/// endpoints come from the environment (`DEEPGRAM_API_KEY`, `DEEPGRAM_STT_DOMAIN`,
/// `OPENAI_API_KEY`, `OPENAI_BASE_URL`), never from the campaign file.
public struct ProviderSettings: Sendable, Hashable {
    public enum Speech: String, Sendable, Hashable, CaseIterable {
        /// pocketsphinx and espeak-ng, in process.
        case offline
        /// Deepgram streaming STT and TTS, with the offline engines as fallback.
        case deepgram
    }

    public enum Language: String, Sendable, Hashable, CaseIterable {
        /// The pitch template played as a script.
        case scripted
        /// Any OpenAI-compatible chat-completions endpoint, with the script as fallback.
        case openai
    }

    public var speech: Speech
    public var language: Language
    /// Deepgram models; nil for the defaults (`nova-3`, `aura-2-thalia-en`).
    public var sttModel: String?
    public var ttsModel: String?
    /// Deepgram TTS over its WebSocket (default) or REST.
    public var ttsOverREST: Bool
    /// The chat model; nil for `OPENAI_MODEL` or `gpt-4o`.
    public var llmModel: String?
    /// `max_tokens` (default; what most compatible servers accept) or `max_completion_tokens`.
    public var tokenLimitField: String
    /// How long the model may take to start its reply before the script takes over (default 2 s).
    public var firstToken: Duration

    public init(
        speech: Speech = .offline, language: Language = .scripted, sttModel: String? = nil, ttsModel: String? = nil, ttsOverREST: Bool = false,
        llmModel: String? = nil, tokenLimitField: String = "max_tokens", firstToken: Duration = .seconds(2)
    ) {
        self.speech = speech
        self.language = language
        self.sttModel = sttModel
        self.ttsModel = ttsModel
        self.ttsOverREST = ttsOverREST
        self.llmModel = llmModel
        self.tokenLimitField = tokenLimitField
        self.firstToken = firstToken
    }
}
