import JSON

/// A streamed chunk read with `JSONReader`, with `JSONDecoder`'s rules: a field left out or
/// `null` is absent, a field of the wrong type is an error (named by its path).
extension ChatCompletionChunk {
    public init(json bytes: some Sequence<UInt8>) throws(ChatError) {
        guard let value = JSONReader.read(bytes) else { throw .malformedChunk("not JSON") }
        let chunk = try JSONFields(value, path: "")
        self.init(
            id: try chunk.string("id"), object: try chunk.string("object"), created: try chunk.int("created"), model: try chunk.string("model"),
            choices: try chunk.array("choices")?.map { choice throws(ChatError) in try Choice(choice) },
            usage: try chunk.fields("usage").map { usage throws(ChatError) in
                TokenUsage(promptTokens: try usage.int("prompt_tokens") ?? 0, completionTokens: try usage.int("completion_tokens") ?? 0)
            },
            error: try chunk.fields("error").map { error throws(ChatError) in
                // Some servers send the code as a number; one of another kind is left out.
                let code: String? =
                    if let text = try? error.string("code") { text } else if let number = try? error.int("code") { String(number) } else { nil }
                return APIErrorBody.Detail(message: try error.string("message"), type: try error.string("type"), code: code)
            })
    }
}

extension ChatCompletionChunk.Choice {
    fileprivate init(_ fields: JSONFields) throws(ChatError) {
        self.init(
            index: 0,
            delta: try fields.fields("delta").map { delta throws(ChatError) in
                ChatCompletionChunk.Delta(
                    role: try delta.string("role"), content: try delta.string("content"), refusal: try delta.string("refusal"),
                    toolCalls: try delta.array("tool_calls")?.map { piece throws(ChatError) in try ChatCompletionChunk.ToolCallDelta(piece) })
            },
            finishReason: try fields.string("finish_reason"))
        self.index = try fields.int("index")
    }
}

extension ChatCompletionChunk.ToolCallDelta {
    fileprivate init(_ fields: JSONFields) throws(ChatError) {
        guard let index = try fields.int("index") else { throw .malformedChunk("\(fields.path).index is missing") }
        self.init(
            index: index, id: try fields.string("id"), type: try fields.string("type"),
            function: try fields.fields("function").map { function throws(ChatError) in
                Function(name: try function.string("name"), arguments: try function.string("arguments"))
            })
    }
}

/// One JSON object's members, read by name and type.
private struct JSONFields {
    let members: [String: JSONValue]
    /// Where the object is in the chunk: "" for the chunk itself, "choices[0].delta" for a delta.
    let path: String

    init(_ value: JSONValue, path: String) throws(ChatError) {
        guard case .object(let members) = value else { throw .malformedChunk(path.isEmpty ? "not a JSON object" : "\(path) is not an object") }
        self.members = members
        self.path = path
    }

    /// The member, or nil when it is left out or null.
    private func member(_ name: String) -> JSONValue? {
        guard let value = self.members[name], value != .null else { return nil }
        return value
    }

    private func located(_ name: String) -> String { self.path.isEmpty ? name : "\(self.path).\(name)" }

    func string(_ name: String) throws(ChatError) -> String? {
        guard let value = self.member(name) else { return nil }
        guard case .string(let text) = value else { throw .malformedChunk("\(self.located(name)) is not a string") }
        return text
    }

    func int(_ name: String) throws(ChatError) -> Int? {
        guard let value = self.member(name) else { return nil }
        guard case .number(let number) = value, let integer = Int(exactly: number) else { throw .malformedChunk("\(self.located(name)) is not an integer") }
        return integer
    }

    func fields(_ name: String) throws(ChatError) -> JSONFields? {
        guard let value = self.member(name) else { return nil }
        return try JSONFields(value, path: self.located(name))
    }

    /// An array of objects.
    func array(_ name: String) throws(ChatError) -> [JSONFields]? {
        guard let value = self.member(name) else { return nil }
        guard case .array(let elements) = value else { throw .malformedChunk("\(self.located(name)) is not an array") }
        var fields: [JSONFields] = []
        for (index, element) in elements.enumerated() { fields.append(try JSONFields(element, path: "\(self.located(name))[\(index)]")) }
        return fields
    }
}
