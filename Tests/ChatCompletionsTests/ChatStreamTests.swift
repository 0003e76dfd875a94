import ChatCompletions
import Foundation
import ProviderDoubles
import Testing

/// Chunks to events: text, tool calls joined by index, the end, and what breaks a stream.
@Suite struct ChatStreamTests {
    func events(_ chunks: [ChatCompletionChunk], done: Bool = true) throws -> [ChatStreamEvent] {
        var assembler = ChatStreamAssembler()
        var events: [ChatStreamEvent] = []
        for chunk in chunks {
            let json = String(decoding: try JSONEncoder().encode(chunk), as: UTF8.self)
            events += try assembler.consume(ServerSentEvent(data: json))
        }
        if done { events += try assembler.consume(ServerSentEvent(data: "[DONE]")) }
        events += try assembler.end()
        return events
    }

    @Test func textArrivesPieceByPieceThenTheFinishWithItsUsage() throws {
        let events = try self.events(FakeChatServer.chunks(text: "Hello there, friend.", size: 6))
        #expect(events == [
            .content("Hello "), .content("there,"), .content(" frien"), .content("d."), .finished(.stop, TokenUsage(promptTokens: 42, completionTokens: 17)),
        ])
    }

    @Test func toolCallArgumentsAreJoinedByIndexEvenWhenThePiecesInterleave() throws {
        let calls = [ToolCall(id: "call_1", name: "end_call", arguments: #"{"outcome":"do_not_call"}"#), ToolCall(id: "call_2", name: "add_to_dnc", arguments: "{}")]
        #expect(try self.events(FakeChatServer.chunks(toolCalls: calls, size: 4)).prefix(1) == [.toolCalls(calls)])
        // Pieces of two calls in turn, names repeated, as some servers send them.
        let mixed: [ChatCompletionChunk] = [
            FakeChatServer.chunk(delta: .init(toolCalls: [.init(index: 1, id: "b", function: .init(name: "add_to_dnc", arguments: ""))])),
            FakeChatServer.chunk(delta: .init(toolCalls: [.init(index: 0, id: "a", function: .init(name: "end_call", arguments: #"{"out"#))])),
            FakeChatServer.chunk(delta: .init(toolCalls: [.init(index: 1, function: .init(name: "add_to_dnc", arguments: "{}"))])),
            FakeChatServer.chunk(delta: .init(toolCalls: [.init(index: 0, function: .init(arguments: #"come":"callback"}"#))])),
            FakeChatServer.chunk(delta: .init(), finish: "tool_calls"),
        ]
        #expect(try self.events(mixed) == [
            .toolCalls([ToolCall(id: "a", name: "end_call", arguments: #"{"outcome":"callback"}"#), ToolCall(id: "b", name: "add_to_dnc", arguments: "{}")]),
            .finished(.toolCalls, nil),
        ])
    }

    @Test func aStreamWithoutDoneIsCompleteOnlyWhenTheModelGaveItsFinishReason() throws {
        #expect(try self.events(FakeChatServer.chunks(text: "ok"), done: false).last == .finished(.stop, TokenUsage(promptTokens: 42, completionTokens: 17)))
        #expect(throws: ChatError.endedEarly) {
            try self.events(Array(FakeChatServer.chunks(text: "cut short").dropLast(2)), done: false)
        }
    }

    @Test func anErrorInsideAnOKStreamFailsIt() throws {
        var assembler = ChatStreamAssembler()
        _ = try assembler.consume(ServerSentEvent(data: #"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#))
        #expect(throws: ChatError.streamError(type: "server_error", code: nil, message: "The server had an error")) {
            try assembler.consume(ServerSentEvent(data: #"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#))
        }
        #expect(throws: ChatError.malformedChunk("not JSON")) { try ChatStreamAssembler().consumeOnce("{half") }
    }

    @Test func aChunkIsReadAsJSONDecoderReadsIt() throws {
        let chunks = FakeChatServer.chunks(text: "Hello \"there\", friend 😀.\n", size: 5)
            + FakeChatServer.chunks(toolCalls: [ToolCall(id: "call_1", name: "end_call", arguments: #"{"outcome":"do_not_call"}"#)], size: 4)
            + [ChatCompletionChunk(choices: nil, error: .init(message: "overloaded", type: "server_error", code: "503"))]
        for chunk in chunks {
            let json = try JSONEncoder().encode(chunk)
            #expect(try ChatCompletionChunk(json: json) == (try JSONDecoder().decode(ChatCompletionChunk.self, from: json)))
        }
        // Left out and null are the same; a numeric error code is read as text.
        let sparse = try ChatCompletionChunk(json: Array(#"{"id":null,"choices":[{"delta":{"content":"Hi","role":null}}],"error":{"code":429}}"#.utf8))
        #expect(sparse.id == nil && sparse.choices?.first?.index == nil && sparse.choices?.first?.delta?.content == "Hi" && sparse.error?.code == "429")
    }

    @Test func aChunkWithAFieldOfTheWrongTypeIsRefusedByItsPath() {
        func refusal(_ data: String) -> ChatError? {
            do {
                _ = try ChatStreamAssembler().consumeOnce(data)
                return nil
            } catch {
                return error as? ChatError
            }
        }
        #expect(refusal(#"{"choices":[{"delta":{"content":7}}]}"#) == .malformedChunk("choices[0].delta.content is not a string"))
        #expect(refusal(#"{"choices":[{"index":0},{"index":1.5}]}"#) == .malformedChunk("choices[1].index is not an integer"))
        #expect(refusal(#"{"choices":[{"delta":{"tool_calls":[{"id":"a"}]}}]}"#) == .malformedChunk("choices[0].delta.tool_calls[0].index is missing"))
        #expect(refusal(#"{"choices":{"delta":{}}}"#) == .malformedChunk("choices is not an array"))
        #expect(refusal(#"["choices"]"#) == .malformedChunk("not a JSON object"))
        // An error event whose data is not a chunk is still the server's error.
        #expect(throws: ChatError.streamError(type: nil, code: nil, message: nil)) {
            var assembler = ChatStreamAssembler()
            _ = try assembler.consume(ServerSentEvent(event: "error", data: "upstream timeout"))
        }
    }

    @Test func refusalsLengthCutsAndServersThatLeaveFieldsOutAreRead() throws {
        var assembler = ChatStreamAssembler()
        var events: [ChatStreamEvent] = []
        for data in [
            #"{"choices":[{"delta":{"refusal":"I can't "}}]}"#, #"{"choices":null}"#, #"{"choices":[{"delta":{"refusal":"help."},"finish_reason":"length"}]}"#,
        ] {
            events += try assembler.consume(ServerSentEvent(data: data))
        }
        events += try assembler.end()
        #expect(events == [.refusal("I can't "), .refusal("help."), .finished(.length, nil)])
    }
}

extension ChatStreamAssembler {
    fileprivate func consumeOnce(_ data: String) throws -> [ChatStreamEvent] {
        var copy = self
        return try copy.consume(ServerSentEvent(data: data))
    }
}
