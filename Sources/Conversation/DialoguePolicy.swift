import Foundation

/// How a call ended, for the lead's disposition.
public enum CallOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    case interested
    case notInterested = "not_interested"
    case callback
    case doNotCall = "do_not_call"
    case wrongPerson = "wrong_person"
    case voicemail
    case noConversation = "no_conversation"
    /// The callee spoke, then hung up before anything was decided.
    case hungUp = "hung_up"
}

/// A callback the callee asked for: the words they used and, when they could be read, the
/// time they mean in their own timezone.
public struct CallbackRequest: Sendable, Hashable, Codable {
    public var phrase: String
    public var time: Date?
    /// The callee's timezone identifier the time was resolved in.
    public var timeZone: String

    public init(phrase: String, time: Date?, timeZone: String) {
        self.phrase = phrase
        self.time = time
        self.timeZone = timeZone
    }
}

/// What a policy asks the engine to do besides speaking.
///
/// In JSON, an object named by `action` (the names the LLM tools use):
/// `{"action": "end_call", "outcome": "do_not_call"}`.
public enum PolicyAction: Sendable, Hashable {
    /// Finish the current line, then hang up.
    case endCall(CallOutcome)
    case scheduleCallback(CallbackRequest)
    /// Put the number on the do-not-call list now.
    case addToDoNotCall
    case transferToHuman(reason: String)
}

extension PolicyAction: Codable {
    private enum CodingKeys: String, CodingKey {
        case action, outcome, callback, reason
    }

    private enum Name: String, Codable {
        case endCall = "end_call"
        case scheduleCallback = "schedule_callback"
        case addToDoNotCall = "add_to_dnc"
        case transferToHuman = "transfer_to_human"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Name.self, forKey: .action) {
        case .endCall: self = .endCall(try container.decode(CallOutcome.self, forKey: .outcome))
        case .scheduleCallback: self = .scheduleCallback(try container.decode(CallbackRequest.self, forKey: .callback))
        case .addToDoNotCall: self = .addToDoNotCall
        case .transferToHuman: self = .transferToHuman(reason: try container.decode(String.self, forKey: .reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .endCall(let outcome):
            try container.encode(Name.endCall, forKey: .action)
            try container.encode(outcome, forKey: .outcome)
        case .scheduleCallback(let request):
            try container.encode(Name.scheduleCallback, forKey: .action)
            try container.encode(request, forKey: .callback)
        case .addToDoNotCall:
            try container.encode(Name.addToDoNotCall, forKey: .action)
        case .transferToHuman(let reason):
            try container.encode(Name.transferToHuman, forKey: .action)
            try container.encode(reason, forKey: .reason)
        }
    }
}

/// A policy's reply, streamed: text as it comes (the engine chunks it), and actions.
public enum PolicyOutput: Sendable, Hashable {
    case text(String)
    case action(PolicyAction)
    /// A provider failed and its offline stand-in took over for the rest of the call (kept in the record).
    case failover(ProviderFailover)
    /// The model's time to the reply's first token: from its request's last byte out to the read
    /// that brought the token (kept in the turn's timeline: the provider's share of the reply's latency).
    case timeToFirstToken(Duration)
}

/// A cloud provider that failed mid-call, and why (its error's description: never a key, a
/// transcript or a phone number).
public struct ProviderFailover: Sendable, Hashable, Codable {
    /// `llm`, `stt` or `tts`.
    public var role: String
    /// The provider that failed, e.g. `openai gpt-4o`.
    public var provider: String
    /// What took over, e.g. `scripted`.
    public var fallback: String
    public var reason: String

    public init(role: String, provider: String, fallback: String, reason: String) {
        self.role = role
        self.provider = provider
        self.fallback = fallback
        self.reason = reason
    }
}

/// What the engine knows of the call when it starts.
public struct CallContext: Sendable {
    public var callID: UUID
    /// The lead's fields, the template's variables.
    public var lead: [String: String]
    /// The callee's timezone, for callback times.
    public var timeZone: TimeZone
    public var startedAt: Date

    public init(callID: UUID, lead: [String: String], timeZone: TimeZone, startedAt: Date) {
        self.callID = callID
        self.lead = lead
        self.timeZone = timeZone
        self.startedAt = startedAt
    }
}

/// One exchange as the policy sees it.
public struct DialogueTurn: Sendable, Hashable, Codable {
    public enum Speaker: String, Sendable, Hashable, Codable {
        case agent
        case caller
    }

    public var speaker: Speaker
    /// For agent turns, what the caller actually heard.
    public var text: String

    public init(speaker: Speaker, text: String) {
        self.speaker = speaker
        self.text = text
    }
}

/// Decides what the agent says. A scripted policy from the template is the default; an LLM
/// policy streams from a chat-completions endpoint.
public protocol DialoguePolicy: Sendable {
    /// Starts the dialogue of one call. Fails when the lead lacks what the template needs.
    func start(_ context: CallContext) throws -> any DialogueSession
    /// Words and phrases the policy acts on, for the recogniser's vocabulary.
    var phrases: [String] { get }
}

extension DialoguePolicy {
    public var phrases: [String] { [] }
}

/// One call's dialogue.
public protocol DialogueSession: AnyObject, Sendable {
    /// The opening: greeting and compliance disclosure, fixed for the call (so it can be pre-rendered).
    var opening: String { get }
    /// Answers the caller's turn. `history` ends with that turn; agent turns hold what was heard.
    func reply(to callerText: String, history: [DialogueTurn]) -> AsyncThrowingStream<PolicyOutput, any Error>
    /// Nobody spoke for a while: the `count`-th prompt.
    func silence(count: Int) -> [PolicyOutput]
    /// A key the caller pressed; nil when the policy ignores it.
    func dtmf(_ digit: Character) -> [PolicyOutput]?
    /// The call reached its maximum length.
    func timeUp() -> [PolicyOutput]
    /// The engine is shutting down: the last line before it hangs up.
    func shutdown() -> [PolicyOutput]
}

extension DialogueSession {
    public func shutdown() -> [PolicyOutput] {
        [.text("I'm sorry, I have to end our call here. Thank you, goodbye.")]
    }
}
