import JSON

/// A streamed chunk read with `JSONReader`, with `JSONDecoder`'s rules: a field left out or
/// `null` is absent, a field of the wrong type is an error (named by its path).
extension ChatCompletionChunk {
    public init(json bytes: some Sequence<UInt8>) throws(ChatError) {
        guard let value = JSONReader.read(bytes) else { throw .malformedChunk("not JSON") }
        do {
            try self.init(JSONObject(value))
        } catch {
            throw .malformedChunk(error.description)
        }
    }

    private init(_ chunk: JSONObject) throws(JSONShapeError) {
        self.init(
            id: try chunk.string("id"), object: try chunk.string("object"), created: try chunk.int("created"), model: try chunk.string("model"),
            choices: try chunk.objects("choices")?.map { choice throws(JSONShapeError) in try Choice(choice) },
            usage: try chunk.object("usage").map { usage throws(JSONShapeError) in
                TokenUsage(promptTokens: try usage.int("prompt_tokens") ?? 0, completionTokens: try usage.int("completion_tokens") ?? 0)
            },
            error: try chunk.object("error").map { error throws(JSONShapeError) in
                // Some servers send the code as a number; one of another kind is left out.
                let code: String? =
                    if let text = try? error.string("code") { text } else if let number = try? error.int("code") { String(number) } else { nil }
                return APIErrorBody.Detail(message: try error.string("message"), type: try error.string("type"), code: code)
            })
    }
}

extension ChatCompletionChunk.Choice {
    fileprivate init(_ choice: JSONObject) throws(JSONShapeError) {
        self.init(
            index: 0,
            delta: try choice.object("delta").map { delta throws(JSONShapeError) in
                ChatCompletionChunk.Delta(
                    role: try delta.string("role"), content: try delta.string("content"), refusal: try delta.string("refusal"),
                    toolCalls: try delta.objects("tool_calls")?.map { piece throws(JSONShapeError) in try ChatCompletionChunk.ToolCallDelta(piece) })
            },
            finishReason: try choice.string("finish_reason"))
        self.index = try choice.int("index")
    }
}

extension ChatCompletionChunk.ToolCallDelta {
    fileprivate init(_ piece: JSONObject) throws(JSONShapeError) {
        guard let index = try piece.int("index") else { throw JSONShapeError("\(piece.located("index")) is missing") }
        self.init(
            index: index, id: try piece.string("id"), type: try piece.string("type"),
            function: try piece.object("function").map { function throws(JSONShapeError) in
                Function(name: try function.string("name"), arguments: try function.string("arguments"))
            })
    }
}
