import ChatCompletions
import Foundation
import JSON
import Testing

/// The request body and the retry rules.
@Suite struct ChatRequestTests {
    func json(_ request: ChatRequest) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(request), as: UTF8.self)
    }

    @Test func theTokenLimitGoesUnderTheFieldTheServerAccepts() throws {
        let messages: [ChatMessage] = [.system("Be brief."), .user("Hi")]
        let old = try self.json(ChatRequest(model: "m", messages: messages, maxTokens: 80))
        #expect(old.contains(#""max_tokens":80"#) && !old.contains("max_completion_tokens"))
        let new = try self.json(ChatRequest(model: "m", messages: messages, maxTokens: 80, tokenLimitField: .maxCompletionTokens))
        #expect(new.contains(#""max_completion_tokens":80"#) && !new.contains(#""max_tokens""#))
        #expect(old.contains(#""stream":true"#) && old.contains(#""stream_options":{"include_usage":true}"#))
        #expect(!old.contains("tools") && !old.contains("response_format") && !old.contains("temperature"))
    }

    @Test func toolsToolMessagesAndStrictSchemasAreWrittenAsTheAPISpecifies() throws {
        let call = ToolCall(id: "call_1", name: "end_call", arguments: #"{"outcome":"interested"}"#)
        let request = ChatRequest(
            model: "gpt-4o", messages: [.user("Yes please"), .assistant(nil, toolCalls: [call]), .tool("ok", callID: "call_1")], temperature: 0.3,
            tools: [ToolDefinition(name: "end_call", parameters: ["type": "object", "properties": [:]])], toolChoice: "auto",
            responseFormat: .jsonSchema(name: "turn", schema: ["type": "object", "required": ["say"]], strict: true))
        let json = try self.json(request)
        #expect(json.contains(#"{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"outcome\":\"interested\"}","name":"end_call"},"id":"call_1","type":"function"}]}"#))
        #expect(json.contains(#"{"content":"ok","role":"tool","tool_call_id":"call_1"}"#))
        #expect(json.contains(#""tools":[{"function":{"name":"end_call","parameters":{"properties":{},"type":"object"}},"type":"function"}]"#))
        #expect(json.contains(#""response_format":{"json_schema":{"name":"turn","schema":{"required":["say"],"type":"object"},"strict":true},"type":"json_schema"}"#))
        #expect(json.contains(#""tool_choice":"auto""#) && json.contains(#""temperature":0.3"#))
    }

    /// The client writes the body itself; it must be JSONEncoder's bytes exactly.
    @Test(arguments: [
        ChatRequest(model: "m", messages: [.user("Hi")]),
        ChatRequest(
            model: "gpt-4o",
            messages: [
                .system("Goal: book a visit.\nSay \"hi\" \\ then <lead>{\"city\": \"Zürich\", \"url\": \"a/b\"}</lead> 😀\t\r\u{01}\u{08}\u{0C}\u{1F}\u{7F}\u{2028}"),
                .user("yes please"),
                .assistant(nil, toolCalls: [ToolCall(id: "call_1", name: "end_call", arguments: #"{"outcome":"interested"}"#)]),
                .tool("ok", callID: "call_1"), .assistant("Okay."),
            ],
            temperature: 0.4, maxTokens: 160,
            tools: [
                ToolDefinition(
                    name: "schedule_callback", description: "When to call back",
                    parameters: [
                        "type": "object", "properties": ["when": ["type": "string"], "n": ["type": "number", "minimum": .number(0.5), "maximum": .number(100)]],
                        "required": ["when", "n"], "additionalProperties": false, "nullable": .null,
                    ],
                    strict: true),
                ToolDefinition(name: "add_to_dnc", parameters: ["type": "object", "properties": [:]], strict: false),
            ],
            toolChoice: "auto"),
        ChatRequest(
            model: "llama", messages: [.system("Rate it."), .user("Transcript")], temperature: 1, maxTokens: 400, tokenLimitField: .maxCompletionTokens,
            responseFormat: .jsonSchema(name: "analysis", schema: ["type": "object", "properties": ["score": ["type": "number"]], "required": ["score"]], strict: true)),
        ChatRequest(model: "m", messages: [.user("")], temperature: 0.30000000000000004, responseFormat: .jsonObject),
        ChatRequest(model: "m", messages: [], temperature: -0.0, responseFormat: .text),
    ])
    func theBodyIsJSONEncodersBytes(_ request: ChatRequest) throws {
        #expect(String(decoding: request.jsonBytes, as: UTF8.self) == (try self.json(request)))
        // Written once around a place for the later messages, for every split of them.
        for leading in 0...request.messages.count {
            var fixed = request
            fixed.messages = Array(request.messages.prefix(leading))
            let body = ChatRequestBody(leading: fixed).bytes(appending: Array(request.messages.dropFirst(leading)))
            #expect(String(decoding: body, as: UTF8.self) == (try self.json(request)), "\(leading) leading")
        }
    }

    @Test func theURLKeepsTheBasesPathAndQuery() {
        func url(_ base: String) -> String { ChatEndpoint(baseURL: base, apiKey: nil, model: "m").chatCompletionsURL }
        #expect(url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions")
        #expect(url("http://localhost:11434/v1/") == "http://localhost:11434/v1/chat/completions")
        #expect(url("https://gw.example/openai/deployments/d?api-version=2024-06-01")
            == "https://gw.example/openai/deployments/d/chat/completions?api-version=2024-06-01")
    }

    @Test func retriesFollowTheStatusTheHeadersAndTheBackoff() {
        let policy = ChatRetryPolicy(maxRetries: 2)
        func delay(_ status: Int, _ headers: [(String, String)] = [], code: String? = nil, retry: Int = 0, jitter: Double = 0) -> Duration? {
            policy.delay(status: status, headers: headers, errorCode: code, retry: retry, jitter: jitter)
        }
        #expect(delay(429, [("Retry-After", "1")]) == .seconds(1))
        #expect(delay(429, [("retry-after-ms", "250"), ("retry-after", "9")]) == .milliseconds(250))
        #expect(delay(503, [("retry-after", "120")]) == .milliseconds(500))
        #expect(delay(500, retry: 1) == .seconds(1))
        #expect(delay(500, retry: 1, jitter: 1) == .milliseconds(750))
        #expect(delay(408) == .milliseconds(500) && delay(409) == .milliseconds(500))
        #expect(delay(500, retry: 2) == nil)
        for status in [400, 401, 403, 404, 422] { #expect(delay(status) == nil, "\(status)") }
        #expect(delay(429, code: "insufficient_quota") == nil)
        #expect(delay(400, [("x-should-retry", "true")]) == .milliseconds(500))
        #expect(delay(503, [("x-should-retry", "false")]) == nil)
        #expect(ChatRetryPolicy(maxRetries: 20).delay(status: 500, headers: [], errorCode: nil, retry: 10, jitter: 0) == .seconds(8))
    }

    @Test func errorDescriptionsNeverCarryAKey() {
        let error = ChatError.status(400, type: "invalid_request_error", code: nil, message: "Incorrect API key provided: sk-proj-abc***wxyz. See docs.")
        #expect(!"\(error)".contains("sk-proj") && "\(error)".contains("[redacted]") && "\(error)".contains("HTTP 400"))
        #expect("\(ChatError.authentication(status: 401, code: "invalid_api_key"))" == "the API key was refused (HTTP 401, invalid_api_key)")
        #expect("\(ChatError.firstTokenTimeout(.milliseconds(2500)))" == "no reply within 2500 ms")
    }
}

@Suite struct SecretPrintingTests {
    @Test func anEndpointPrintsNoKeyHoweverItIsPrinted() {
        let endpoint = ChatEndpoint(baseURL: "https://api.openai.com/v1", apiKey: "sk-secret-123456", model: "gpt-4o")
        var dumped = ""
        dump(endpoint, to: &dumped)
        for text in ["\(endpoint)", String(reflecting: endpoint), "\([endpoint])"] {
            #expect(!text.contains("sk-secret") && text.contains("<redacted>"), "\(text)")
        }
        #expect(!dumped.contains("sk-secret") && dumped.contains("gpt-4o"), "\(dumped)")
    }
}
