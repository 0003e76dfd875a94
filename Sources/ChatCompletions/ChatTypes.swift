import JSON

/// One message of the conversation sent to the model.
public struct ChatMessage: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable {
        case system, user, assistant, tool
    }

    public var role: Role
    public var content: String?
    /// The tools an assistant message called.
    public var toolCalls: [ToolCall]?
    /// For a `tool` message: the call it answers.
    public var toolCallID: String?

    public init(role: Role, content: String?, toolCalls: [ToolCall]? = nil, toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    public static func system(_ text: String) -> Self { Self(role: .system, content: text) }
    public static func user(_ text: String) -> Self { Self(role: .user, content: text) }
    public static func assistant(_ text: String?, toolCalls: [ToolCall]? = nil) -> Self { Self(role: .assistant, content: text, toolCalls: toolCalls) }
    public static func tool(_ text: String, callID: String) -> Self { Self(role: .tool, content: text, toolCallID: callID) }

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.role, forKey: .role)
        // An assistant message that only calls tools says so with `"content": null`.
        if let content = self.content { try container.encode(content, forKey: .content) } else { try container.encodeNil(forKey: .content) }
        try container.encodeIfPresent(self.toolCalls, forKey: .toolCalls)
        try container.encodeIfPresent(self.toolCallID, forKey: .toolCallID)
    }
}

/// A function the model called, with its arguments as JSON text.
public struct ToolCall: Sendable, Hashable, Codable {
    public struct Function: Sendable, Hashable, Codable {
        public var name: String
        public var arguments: String

        public init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }

    public var id: String
    public var type: String
    public var function: Function

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.type = "function"
        self.function = Function(name: name, arguments: arguments)
    }
}

/// A function the model may call.
public struct ToolDefinition: Sendable, Hashable, Codable {
    public struct Function: Sendable, Hashable, Codable {
        public var name: String
        public var description: String?
        /// A JSON schema of the arguments.
        public var parameters: JSONValue
        public var strict: Bool?
    }

    public var type: String
    public var function: Function

    public init(name: String, description: String? = nil, parameters: JSONValue, strict: Bool? = nil) {
        self.type = "function"
        self.function = Function(name: name, description: description, parameters: parameters, strict: strict)
    }
}

/// The shape the model's text must take.
public enum ResponseFormat: Sendable, Hashable, Encodable {
    case text
    case jsonObject
    /// A JSON schema; with `strict`, every property is required and no object admits others.
    case jsonSchema(name: String, schema: JSONValue, strict: Bool)

    enum CodingKeys: String, CodingKey {
        case type
        case jsonSchema = "json_schema"
    }

    struct Schema: Encodable {
        var name: String
        var schema: JSONValue
        var strict: Bool
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text:
            try container.encode("text", forKey: .type)
        case .jsonObject:
            try container.encode("json_object", forKey: .type)
        case .jsonSchema(let name, let schema, let strict):
            try container.encode("json_schema", forKey: .type)
            try container.encode(Schema(name: name, schema: schema, strict: strict), forKey: .jsonSchema)
        }
    }
}

/// How the request names its output limit: `max_tokens` (the older name, which many compatible
/// servers accept alone) or `max_completion_tokens` (which reasoning models require).
public enum TokenLimitField: String, Sendable, Hashable, Codable, CaseIterable {
    case maxTokens = "max_tokens"
    case maxCompletionTokens = "max_completion_tokens"
}

/// A chat-completions request; `stream` is always on (with the usage chunk asked for).
public struct ChatRequest: Sendable, Hashable, Encodable {
    public var model: String
    public var messages: [ChatMessage]
    public var temperature: Double?
    public var maxTokens: Int?
    public var tokenLimitField: TokenLimitField
    public var tools: [ToolDefinition]
    /// `auto`, `none` or `required`; the server's default when nil.
    public var toolChoice: String?
    public var responseFormat: ResponseFormat?

    public init(
        model: String, messages: [ChatMessage], temperature: Double? = nil, maxTokens: Int? = nil, tokenLimitField: TokenLimitField = .maxTokens,
        tools: [ToolDefinition] = [], toolChoice: String? = nil, responseFormat: ResponseFormat? = nil
    ) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.tokenLimitField = tokenLimitField
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { self.stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    struct StreamOptions: Encodable {
        var include_usage = true
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(self.model, forKey: Key("model"))
        try container.encode(self.messages, forKey: Key("messages"))
        try container.encode(true, forKey: Key("stream"))
        try container.encode(StreamOptions(), forKey: Key("stream_options"))
        try container.encodeIfPresent(self.temperature, forKey: Key("temperature"))
        try container.encodeIfPresent(self.maxTokens, forKey: Key(self.tokenLimitField.rawValue))
        if !self.tools.isEmpty { try container.encode(self.tools, forKey: Key("tools")) }
        try container.encodeIfPresent(self.toolChoice, forKey: Key("tool_choice"))
        try container.encodeIfPresent(self.responseFormat, forKey: Key("response_format"))
    }
}

/// Why the model stopped.
public enum FinishReason: Sendable, Hashable {
    case stop
    /// The output limit cut the answer (JSON may be incomplete).
    case length
    case toolCalls
    case contentFilter
    case other(String)

    public init(_ text: String) {
        switch text {
        case "stop": self = .stop
        case "length": self = .length
        case "tool_calls", "function_call": self = .toolCalls
        case "content_filter": self = .contentFilter
        default: self = .other(text)
        }
    }
}

public struct TokenUsage: Sendable, Hashable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        self.completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.promptTokens, forKey: .promptTokens)
        try container.encode(self.completionTokens, forKey: .completionTokens)
        try container.encode(self.promptTokens + self.completionTokens, forKey: .totalTokens)
    }
}

/// The error envelope: `{"error": {"message", "type", "param", "code"}}`, in a 4xx/5xx body or inside a stream.
public struct APIErrorBody: Sendable, Hashable, Codable {
    public struct Detail: Sendable, Hashable, Codable {
        public var message: String?
        public var type: String?
        public var code: String?

        public init(message: String?, type: String?, code: String?) {
            self.message = message
            self.type = type
            self.code = code
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.message = try container.decodeIfPresent(String.self, forKey: .message)
            self.type = try container.decodeIfPresent(String.self, forKey: .type)
            // Some servers send a number.
            self.code = (try? container.decodeIfPresent(String.self, forKey: .code)) ?? (try? container.decodeIfPresent(Int.self, forKey: .code)).flatMap { $0.map(String.init) }
        }
    }

    public var error: Detail

    public init(error: Detail) {
        self.error = error
    }
}

/// One `chat.completion.chunk` of a stream. Every field is optional: compatible servers leave out different ones.
public struct ChatCompletionChunk: Sendable, Hashable, Codable {
    public struct Choice: Sendable, Hashable, Codable {
        public var index: Int?
        public var delta: Delta?
        public var finishReason: String?

        public init(index: Int = 0, delta: Delta?, finishReason: String? = nil) {
            self.index = index
            self.delta = delta
            self.finishReason = finishReason
        }

        enum CodingKeys: String, CodingKey {
            case index, delta
            case finishReason = "finish_reason"
        }
    }

    public struct Delta: Sendable, Hashable, Codable {
        public var role: String?
        public var content: String?
        public var refusal: String?
        public var toolCalls: [ToolCallDelta]?

        public init(role: String? = nil, content: String? = nil, refusal: String? = nil, toolCalls: [ToolCallDelta]? = nil) {
            self.role = role
            self.content = content
            self.refusal = refusal
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content, refusal
            case toolCalls = "tool_calls"
        }
    }

    /// A piece of a tool call: the first piece of an `index` names it, later ones add argument text.
    public struct ToolCallDelta: Sendable, Hashable, Codable {
        public struct Function: Sendable, Hashable, Codable {
            public var name: String?
            public var arguments: String?

            public init(name: String? = nil, arguments: String? = nil) {
                self.name = name
                self.arguments = arguments
            }
        }

        public var index: Int
        public var id: String?
        public var type: String?
        public var function: Function?

        public init(index: Int, id: String? = nil, type: String? = nil, function: Function? = nil) {
            self.index = index
            self.id = id
            self.type = type
            self.function = function
        }
    }

    public var id: String?
    public var object: String?
    public var created: Int?
    public var model: String?
    public var choices: [Choice]?
    public var usage: TokenUsage?
    /// An error reported inside a 200 stream.
    public var error: APIErrorBody.Detail?

    public init(
        id: String? = nil, object: String? = "chat.completion.chunk", created: Int? = nil, model: String? = nil, choices: [Choice]?,
        usage: TokenUsage? = nil, error: APIErrorBody.Detail? = nil
    ) {
        self.id = id
        self.object = object
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.error = error
    }
}
