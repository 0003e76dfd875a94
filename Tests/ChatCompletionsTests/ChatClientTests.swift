import ChatCompletions
import JSON
import Logging
import NIOCore
import NIOSSL
import ProviderDoubles
import StreamingHTTP
import Synchronization
import TestSupport
import Testing

/// The client against the loopback double: real HTTP, real SSE, odd piece sizes, scripted failures.
@Suite(.timeLimit(.minutes(1))) struct ChatClientTests {
    static let key = "sk-test-0123456789abcdefghijklmnopqrstuv"

    func withServer(
        key: String? = Self.key, timeouts: ChatTimeouts = ChatTimeouts(firstToken: .seconds(30), deadline: .seconds(60)),
        _ body: (FakeChatServer, ChatCompletionsClient, ManualClock, LogCapture) async throws -> Void
    ) async throws {
        let server = FakeChatServer(apiKey: Self.key)
        let base = try await server.start()
        let clock = ManualClock()
        let logs = LogCapture()
        let client = ChatCompletionsClient(
            endpoint: ChatEndpoint(baseURL: base, apiKey: key, model: "fake-model"), timeouts: timeouts, clock: clock, logger: logs.logger(),
            jitter: { 0 })
        do {
            try await body(server, client, clock, logs)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    func collect(_ stream: AsyncThrowingStream<ChatStreamEvent, any Error>) async throws -> [ChatStreamEvent] {
        var events: [ChatStreamEvent] = []
        for try await event in stream { events.append(event) }
        return events
    }

    @Test func aStreamedReplyArrivesWholeThroughOddPieces() async throws {
        try await self.withServer { server, client, _, _ in
            let text = "Thanks for taking my call — it's about solar panels for your home. Would 10 o'clock suit?"
            server.enqueue(.stream(FakeChatServer.chunks(text: text, size: 3)))
            let reply = try await client.complete(client.request([.system("You are brief."), .user("Hi")], maxTokens: 120))
            #expect(reply.text == text)
            #expect(reply.finishReason == .stop && reply.usage == TokenUsage(promptTokens: 42, completionTokens: 17))
            let request = try #require(server.requests.first)
            #expect(request.path == "/v1/chat/completions")
            #expect(request.header("authorization") == "Bearer \(Self.key)")
            #expect(request.body["max_tokens"] == .number(120) && request.body["stream"] == .bool(true))
        }
    }

    @Test func toolCallsComeBackWholeAfterTheirArgumentPieces() async throws {
        try await self.withServer { server, client, _, _ in
            let call = ToolCall(id: "call_9", name: "schedule_callback", arguments: #"{"when":"tomorrow at 10 am"}"#)
            server.enqueue(.stream(FakeChatServer.chunks(toolCalls: [call], size: 3)))
            let events = try await self.collect(client.stream(client.request([.user("call me tomorrow at ten")])))
            #expect(events == [.toolCalls([call]), .finished(.toolCalls, TokenUsage(promptTokens: 42, completionTokens: 17))])
        }
    }

    @Test func theModelsTimeToItsFirstTokenIsHeardOnceJustBeforeIt() async throws {
        try await self.withServer { server, client, _, _ in
            // The double answers 60 ms after it has read the request: the wait is at least that.
            server.enqueue(.after(.milliseconds(60), .stream(FakeChatServer.chunks(text: "Hello there.", size: 3))))
            let heard = Mutex<[String]>([])
            let body = ChatRequestBody(leading: client.request([.system("You are brief.")]))
            let call = client.call(body, appending: [.user("Hi")], firstToken: { time in
                heard.withLock { $0.append(time >= .milliseconds(60) ? "first token after the pause" : "first token after \(time)") }
            }) { event in
                let said: String = if case .content(let text) = event { text } else { "\(event)" }
                heard.withLock { $0.append(said) }
            }
            let ended = AsyncStream.makeStream(of: Void.self)
            call.start { _ in ended.continuation.finish() }
            for await _ in ended.stream {}
            let events = heard.withLock { $0 }
            #expect(events.prefix(2) == ["first token after the pause", "Hel"])
            #expect(events.filter { $0.hasPrefix("first token") }.count == 1)
            #expect(events.dropFirst().dropLast().joined() == "Hello there.")
        }
    }

    @Test func aRetriedRequestsTimeToItsFirstTokenCountsFromItsFirstAttempt() async throws {
        try await self.withServer { server, client, clock, _ in
            // Refused 60 ms after the first attempt; the retry is answered at once.
            server.enqueue(
                .after(.milliseconds(60), .status(429, type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached", headers: [("retry-after", "1")])),
                .stream(FakeChatServer.chunks(text: "After the wait.")))
            let times = Mutex<[Duration]>([])
            let call = client.call(ChatRequestBody(leading: client.request([])), appending: [.user("Hi")], firstToken: { time in times.withLock { $0.append(time) } }) { _ in }
            let ended = AsyncStream.makeStream(of: Void.self)
            call.start { _ in ended.continuation.finish() }
            // The watchdog and the retry's wait both sleep on the clock.
            try await eventually { clock.sleepers == 2 && server.requests.count == 1 }
            clock.advance(by: .seconds(1))
            for await _ in ended.stream {}
            #expect(server.requests.count == 2)
            #expect(times.withLock { $0.count == 1 && $0[0] >= .milliseconds(60) })
        }
    }

    @Test func aRefusedKeyIsNotRetriedAndItsErrorQuotesNoKey() async throws {
        try await self.withServer(key: "sk-wrong-key-0123456789abcdefghijkl") { server, client, _, logs in
            await #expect(throws: ChatError.authentication(status: 401, code: "invalid_api_key")) {
                try await client.complete(client.request([.user("Hi")]))
            }
            #expect(server.requests.count == 1)
            #expect(!logs.all.joined().contains("sk-wrong"))
        }
    }

    @Test func aRateLimitIsRetriedAfterTheTimeTheServerAsked() async throws {
        try await self.withServer { server, client, clock, _ in
            server.enqueue(
                .status(429, type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached", headers: [("retry-after", "1")]),
                .stream(FakeChatServer.chunks(text: "After the wait.")))
            let reply = Task { try await client.complete(client.request([.user("Hi")])) }
            // The watchdog and the retry's wait both sleep on the clock.
            try await eventually { clock.sleepers == 2 && server.requests.count == 1 }
            clock.advance(by: .milliseconds(999))
            #expect(server.requests.count == 1)
            clock.advance(by: .milliseconds(1))
            #expect(try await reply.value.text == "After the wait.")
            #expect(server.requests.count == 2)
        }
    }

    @Test func noQuotaIsFinalAndServerErrorsGiveUpAfterTheRetries() async throws {
        try await self.withServer { server, client, clock, _ in
            server.enqueue(.status(429, type: "insufficient_quota", code: "insufficient_quota", message: "You exceeded your current quota"))
            await #expect(throws: ChatError.insufficientQuota) { try await client.complete(client.request([.user("Hi")])) }
            #expect(server.requests.count == 1)

            for _ in 0..<3 { server.enqueue(.status(500, type: "server_error", code: nil, message: "The server had an error")) }
            let reply = Task { try await client.complete(client.request([.user("Hi")])) }
            try await eventually { clock.sleepers == 2 && server.requests.count == 2 }
            clock.advance(by: .milliseconds(500))
            try await eventually { clock.sleepers == 2 && server.requests.count == 3 }
            clock.advance(by: .seconds(1))
            await #expect(throws: ChatError.status(500, type: "server_error", code: nil, message: "The server had an error")) { try await reply.value }
            #expect(server.requests.count == 4)
        }
    }

    @Test func aSilentServerTripsTheFirstTokenWatchdog() async throws {
        try await self.withServer(timeouts: ChatTimeouts(firstToken: .seconds(2), deadline: .seconds(10))) { server, client, clock, _ in
            server.enqueue(.stall([FakeChatServer.chunk(delta: .init(role: "assistant", content: ""))]))
            let reply = Task { try await client.complete(client.request([.user("Hi")])) }
            try await eventually { clock.sleepers == 1 && server.requests.count == 1 }
            clock.advance(by: .seconds(2))
            await #expect(throws: ChatError.firstTokenTimeout(.seconds(2))) { try await reply.value }
        }
    }

    @Test func aStreamThatStallsAfterItsFirstWordsTripsTheDeadline() async throws {
        try await self.withServer(timeouts: ChatTimeouts(firstToken: .seconds(2), deadline: .seconds(10))) { server, client, clock, _ in
            server.enqueue(.stall(Array(FakeChatServer.chunks(text: "Let me check that for", size: 5).prefix(3))))
            var iterator = client.stream(client.request([.user("Hi")])).makeAsyncIterator()
            #expect(try await iterator.next() == .content("Let m"))
            #expect(try await iterator.next() == .content("e che"))
            clock.advance(by: .seconds(2))
            try await eventually { clock.sleepers == 1 }
            clock.advance(by: .seconds(8))
            await #expect(throws: ChatError.deadlineExceeded(.seconds(10))) { _ = try await iterator.next() }
        }
    }

    @Test func aCutConnectionAndAnErrorInsideTheStreamAreErrors() async throws {
        try await self.withServer { server, client, _, _ in
            server.enqueue(.drop(Array(FakeChatServer.chunks(text: "Half a sen", size: 4).prefix(3))))
            await #expect(throws: ChatError.endedEarly) { try await client.complete(client.request([.user("Hi")])) }
            server.enqueue(.stream(FakeChatServer.chunks(text: "Hel").prefix(2) + [ChatCompletionChunk(choices: nil, error: .init(message: "overloaded", type: "server_error", code: nil))]))
            await #expect(throws: ChatError.streamError(type: "server_error", code: nil, message: "overloaded")) {
                try await client.complete(client.request([.user("Hi")]))
            }
        }
    }

    @Test func repliesInARowShareOneConnection() async throws {
        try await self.withServer { server, client, _, _ in
            for turn in 0..<3 {
                server.enqueue(.stream(FakeChatServer.chunks(text: "Reply \(turn).", size: 2)))
                #expect(try await client.complete(client.request([.user("Hi")])).text == "Reply \(turn).")
                // The reply ends at `[DONE]`; the rest of the response frees the connection just after.
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(server.requests.count == 3)
            #expect(server.connectionsAccepted == 1)
        }
    }

    @Test func aCallCancelledBeforeItStartsSendsNothing() async throws {
        try await self.withServer { server, client, _, _ in
            server.enqueue(.stream(FakeChatServer.chunks(text: "Never heard.")))
            let events = Mutex<[ChatStreamEvent]>([])
            let call = client.call(client.request([.user("Hi")])) { event in events.withLock { $0.append(event) } }
            call.cancel()
            let result = await withCheckedContinuation { continuation in call.start { continuation.resume(returning: $0) } }
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(events.withLock { $0 }.isEmpty)
            #expect(server.requests.isEmpty)
        }
    }

    @Test func aReplyComesOverTLSOnlyFromAServerTheClientTrusts() async throws {
        let authority = try TestCertificateAuthority()
        let server = FakeChatServer(apiKey: Self.key)
        let base = try await server.start(tls: try authority.serverContext())
        #expect(base.hasPrefix("https://"))
        let http = StreamingHTTPClient(trustRoots: try authority.trustRoots())
        let systemRoots = StreamingHTTPClient()
        let logs = LogCapture()
        let endpoint = ChatEndpoint(baseURL: base, apiKey: Self.key, model: "fake-model")
        do {
            server.enqueue(.stream(FakeChatServer.chunks(text: "Hello over TLS.", size: 3)))
            let client = ChatCompletionsClient(endpoint: endpoint, http: http, logger: logs.logger())
            #expect(try await client.complete(client.request([.user("Hi")])).text == "Hello over TLS.")
            // The system's roots do not know the authority: the handshake fails and nothing is asked.
            let untrusting = ChatCompletionsClient(endpoint: endpoint, http: systemRoots, logger: logs.logger())
            do {
                _ = try await untrusting.complete(untrusting.request([.user("Hi")]))
                Issue.record("a certificate from an unknown authority was accepted")
            } catch let error as ChatError {
                // Named, and not asked again: asking again would not make the certificate trusted.
                guard case .transport(let reason) = error else { throw error }
                #expect(reason == "TLS handshake failed: CERTIFICATE_VERIFY_FAILED", "\(reason)")
                #expect(!logs.all.contains { $0.contains("trying again") }, "\(logs.all)")
            }
            #expect(server.requests.count == 1)
        } catch {
            Issue.record(error)
        }
        http.closeIdleConnections()
        systemRoots.closeIdleConnections()
        await server.stop()
    }

    @Test func underLoadTheDoubleKeepsItsLastRequestsInOrder() async throws {
        let server = FakeChatServer(apiKey: Self.key, keptRequests: 2)
        let client = ChatCompletionsClient(endpoint: ChatEndpoint(baseURL: try await server.start(), apiKey: Self.key, model: "fake-model"), logger: LogCapture().logger())
        server.answerEveryRequest(.stream(FakeChatServer.chunks(text: "Okay.")))
        do {
            for turn in 1...5 { _ = try await client.complete(client.request([.user("turn \(turn)")])) }
            let said = server.requests.map { $0.body["messages"].flatMap { if case .array(let messages) = $0 { messages.last?["content"]?.string } else { nil } } }
            #expect(said == ["turn 4", "turn 5"])
        } catch {
            Issue.record(error)
        }
        await server.stop()
    }

    @Test func theDoubleRefusesWhatTheServiceRefuses() async throws {
        try await self.withServer { server, client, _, _ in
            await #expect(throws: ChatError.self) { try await client.complete(client.request([ChatMessage(role: .tool, content: "ok"), .user("Hi")])) }
            let loose = ResponseFormat.jsonSchema(
                name: "analysis", schema: ["type": "object", "properties": ["summary": ["type": "string"]], "required": [], "additionalProperties": false], strict: true)
            do {
                _ = try await client.complete(client.request([.user("Hi")], responseFormat: loose))
                Issue.record("a strict schema with a property left out of 'required' was accepted")
            } catch let error as ChatError {
                #expect("\(error)".contains("HTTP 400") && "\(error)".contains("summary"))
            }
            #expect(server.requests.count == 2)
        }
    }
}
