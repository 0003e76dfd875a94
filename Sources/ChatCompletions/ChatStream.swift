/// What a streamed reply yields, in order: text as it comes, whole tool calls once the model
/// is done with them, then the end.
public enum ChatStreamEvent: Sendable, Hashable {
    /// A piece of the reply's text.
    case content(String)
    /// A piece of a refusal (the model declined to answer).
    case refusal(String)
    /// The tool calls of the reply, arguments joined, in the order the model gave them.
    case toolCalls([ToolCall])
    /// The reply is complete.
    case finished(FinishReason, TokenUsage?)
}

/// Turns a stream's server-sent events into `ChatStreamEvent`s: decodes each chunk, joins the
/// argument pieces of each tool call by its index, and checks that the stream ends properly.
/// A value with no I/O: the client feeds it events and the end of the bytes.
public struct ChatStreamAssembler: Sendable {
    private struct PartialCall: Sendable {
        var id: String?
        var name: String?
        var arguments = ""
    }

    private var calls: [Int: PartialCall] = [:]
    private var finishReason: FinishReason?
    private var usage: TokenUsage?
    public private(set) var isDone = false

    public init() {}

    /// The events one server-sent event brings.
    public mutating func consume(_ event: ServerSentEvent) throws(ChatError) -> [ChatStreamEvent] {
        guard !self.isDone else { return [] }
        if event.data.hasPrefix("[DONE]") { return self.finish() }
        let chunk: ChatCompletionChunk
        do {
            chunk = try ChatCompletionChunk(json: event.data.utf8)
        } catch {
            if event.event == "error" { throw .streamError(type: nil, code: nil, message: nil) }
            throw error
        }
        if let error = chunk.error { throw .streamError(type: error.type, code: error.code, message: error.message) }
        if event.event == "error" { throw .streamError(type: nil, code: nil, message: nil) }
        if let usage = chunk.usage { self.usage = usage }
        var events: [ChatStreamEvent] = []
        // Only the first choice is read: requests ask for one (`n` is never sent).
        guard let choice = chunk.choices?.first(where: { ($0.index ?? 0) == 0 }) else { return events }
        if let delta = choice.delta {
            if let content = delta.content, !content.isEmpty { events.append(.content(content)) }
            if let refusal = delta.refusal, !refusal.isEmpty { events.append(.refusal(refusal)) }
            for piece in delta.toolCalls ?? [] {
                var call = self.calls[piece.index] ?? PartialCall()
                if let id = piece.id, !id.isEmpty { call.id = id }
                // The first piece names the function; some servers repeat the name in later pieces.
                if call.name == nil, let name = piece.function?.name, !name.isEmpty { call.name = name }
                call.arguments += piece.function?.arguments ?? ""
                self.calls[piece.index] = call
            }
        }
        if let reason = choice.finishReason {
            self.finishReason = FinishReason(reason)
            events += try self.takeCalls()
        }
        return events
    }

    /// The bytes ended. A stream that never said `[DONE]` is complete only when the model gave
    /// its finish reason (some compatible servers leave `[DONE]` out).
    public mutating func end() throws(ChatError) -> [ChatStreamEvent] {
        guard !self.isDone else { return [] }
        guard self.finishReason != nil else { throw .endedEarly }
        return self.finish()
    }

    private mutating func finish() -> [ChatStreamEvent] {
        self.isDone = true
        let calls = (try? self.takeCalls()) ?? []
        return calls + [.finished(self.finishReason ?? (calls.isEmpty ? .stop : .toolCalls), self.usage)]
    }

    private mutating func takeCalls() throws(ChatError) -> [ChatStreamEvent] {
        guard !self.calls.isEmpty else { return [] }
        defer { self.calls.removeAll() }
        var calls: [ToolCall] = []
        for (index, call) in self.calls.sorted(by: { $0.key < $1.key }) {
            guard let name = call.name else { throw .malformedChunk("tool call \(index) has no name") }
            calls.append(ToolCall(id: call.id ?? "call_\(index)", name: name, arguments: call.arguments.isEmpty ? "{}" : call.arguments))
        }
        return [.toolCalls(calls)]
    }
}
