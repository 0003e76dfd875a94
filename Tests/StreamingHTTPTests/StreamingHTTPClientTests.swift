import ChatCompletions
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ProviderDoubles
@testable import StreamingHTTP
import TestSupport
import Testing

/// The chat client's HTTP/1.1 transport against the loopback double: what goes on the wire, and
/// what happens to its kept-alive connections.
@Suite(.timeLimit(.minutes(1))) struct StreamingHTTPClientTests {
    static let key = "sk-test-0123456789abcdefghijklmnopqrstuv"

    func withServer(http: StreamingHTTPClient, base: (String) -> String = { $0 }, _ body: (FakeChatServer, ChatCompletionsClient) async throws -> Void) async throws {
        let server = FakeChatServer(apiKey: Self.key)
        let url = try await server.start()
        let logs = LogCapture()
        let client = ChatCompletionsClient(endpoint: ChatEndpoint(baseURL: base(url), apiKey: Self.key, model: "fake-model"), http: http, logger: logs.logger())
        do {
            try await body(server, client)
        } catch {
            Issue.record(error)
        }
        // Whatever happened to a connection, no request waited for the retry policy's backoff.
        #expect(!logs.all.contains { $0.contains("trying again") }, "\(logs.all)")
        http.closeIdleConnections()
        await server.stop()
    }

    @Test func aPostFromATaskHasItsHeadThenItsBodyAndGivesUpAfterItsTimeout() async throws {
        let server = FakeChatServer(apiKey: Self.key)
        let url = try await server.start()
        let http = StreamingHTTPClient()
        let target = try HTTPTarget(post: url + "/chat/completions", headers: [("Authorization", "Bearer \(Self.key)"), ("Content-Type", "application/json")])
        let body = ByteBuffer(string: #"{"model":"fake-model","messages":[{"role":"user","content":"Hi"}],"stream":true}"#)
        do {
            server.enqueue(.stream(FakeChatServer.chunks(text: "Hello.", size: 10)))
            let response = try await http.post(target, body: body, timeout: .seconds(5))
            #expect(response.head.status == .ok)
            let text = String(buffer: try #require(try await response.collect(upTo: 1 << 20)))
            #expect(text.contains(#""content":"Hello.""#) && text.contains("data: [DONE]"), "\(text)")
            // An error status, with its body.
            server.enqueue(.status(429, type: "rate_limit_exceeded", code: nil, message: "Slow down."))
            let refused = try await http.post(target, body: body, timeout: .seconds(5))
            #expect(refused.head.status.code == 429)
            #expect(String(buffer: try #require(try await refused.collect(upTo: 1 << 20))).contains("Slow down."))
            // A body that stops coming: the exchange is over at its time, with the reason.
            server.enqueue(.stall(FakeChatServer.chunks(text: "Never ends.")))
            await #expect(throws: HTTPTransportError.timedOut) {
                _ = try await http.post(target, body: body, timeout: .seconds(1)).collect(upTo: 1 << 20)
            }
            // Too long a body for the caller's limit.
            server.enqueue(.stream(FakeChatServer.chunks(text: "Hello.")))
            #expect(try await http.post(target, body: body, timeout: .seconds(5)).collect(upTo: 10) == nil)
            #expect(server.requests.count == 4)
        } catch {
            Issue.record(error)
        }
        http.closeIdleConnections()
        await server.stop()
    }

    @Test func aDoubleThatChecksBodiesAfterAnsweringAnswersAtOnceAndCountsWhatTheServiceWouldRefuse() async throws {
        let server = FakeChatServer(apiKey: Self.key, bodyCheck: .afterAnswering)
        let url = try await server.start()
        server.answerEveryRequest(.stream(FakeChatServer.chunks(text: "Hello.", size: 16)))
        let http = StreamingHTTPClient()
        let target = try HTTPTarget(post: url + "/chat/completions", headers: [("Authorization", "Bearer \(Self.key)"), ("Content-Type", "application/json")])
        do {
            for body in [#"{"messages":[{"role":"user","content":"Hi"}]}"#, #"{"model":"fake-model","messages":[{"role":"user","content":"Hi"}]}"#] {
                let response = try await http.post(target, body: ByteBuffer(string: body), timeout: .seconds(5))
                #expect(response.head.status == .ok)
                #expect(String(buffer: try #require(try await response.collect(upTo: 1 << 20))).contains(#""content":"Hello.""#))
            }
            try await eventually { server.requests.count == 2 }
            // The first body has no model: the service would have refused it.
            #expect(server.refusedAfterAnswering == 1)
        } catch {
            Issue.record(error)
        }
        http.closeIdleConnections()
        await server.stop()
    }

    @Test func theRequestNamesItsHostPathQueryAndLength() async throws {
        try await self.withServer(http: StreamingHTTPClient(), base: { $0 + "?api-version=2024-06-01" }) { server, client in
            server.enqueue(.stream(FakeChatServer.chunks(text: "Hello.")))
            let request = client.request([.user("Hi")])
            #expect(try await client.complete(request).text == "Hello.")
            let seen = try #require(server.requests.first)
            #expect(seen.path == "/v1/chat/completions?api-version=2024-06-01")
            let port = try #require(client.endpoint.baseURL.split(separator: ":").last?.split(separator: "/").first)
            #expect(seen.header("host") == "127.0.0.1:\(port)")
            #expect(seen.header("content-length") == String(request.jsonBytes.count))
            #expect(seen.header("content-type") == "application/json" && seen.header("accept") == "text/event-stream")
            #expect(seen.header("transfer-encoding") == nil)
        }
    }

    @Test func aConnectionTheServerClosedIsReplacedWithoutAnError() async throws {
        let http = StreamingHTTPClient()
        try await self.withServer(http: http) { server, client in
            for turn in 0..<3 {
                server.enqueue(.stream(FakeChatServer.chunks(text: "Reply \(turn).")))
                #expect(try await client.complete(client.request([.user("Hi")])).text == "Reply \(turn).")
                try await eventually { http.idleConnections == 1 }
                // The server ends idle connections, as real ones do after their keep-alive time.
                await server.dropConnections()
            }
            #expect(server.requests.count == 3)
            #expect(server.connectionsAccepted == 3)
        }
    }

    @Test func aRequestMadeOnAnEventLoopIsWrittenAndReadOnAConnectionThere() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (first, second) = (group.next(), group.next())
        let http = StreamingHTTPClient(group: group)
        try await self.withServer(http: http) { server, client in
            server.answerEveryRequest(.stream(FakeChatServer.chunks(text: "Hello.")))
            /// Makes a request on `loop`; the loop its reply was read on.
            func reply(madeOn loop: any EventLoop) async throws -> ObjectIdentifier? {
                try await withCheckedThrowingContinuation { continuation in
                    loop.execute {
                        let readOn = NIOLockedValueBox<ObjectIdentifier?>(nil)
                        let call = client.call(client.request([.user("Hi")])) { _ in
                            readOn.withLockedValue { $0 = MultiThreadedEventLoopGroup.currentEventLoop.map(ObjectIdentifier.init) }
                        }
                        call.start { result in continuation.resume(with: result.map { readOn.withLockedValue { $0 } }) }
                    }
                }
            }
            // The first request opens a connection where it is made.
            #expect(try await reply(madeOn: first) == ObjectIdentifier(first))
            try await eventually { http.idleConnections == 1 }
            // From the other loop: the kept connection answers (a new one would cost more than a
            // thread hop), and one is opened on that loop for its next request.
            #expect(try await reply(madeOn: second) == ObjectIdentifier(first))
            try await eventually { http.idleConnections == 2 && server.connectionsAccepted == 2 }
            // From then on each loop's requests are written and read on that loop.
            for loop in [second, first, second, first] {
                #expect(try await reply(madeOn: loop) == ObjectIdentifier(loop))
                try await eventually { http.idleConnections == 2 }
            }
            #expect(server.connectionsAccepted == 2)
            #expect(server.requests.count == 6)
        }
        try await group.shutdownGracefully()
    }

    @Test func aKeptConnectionClosedUnansweredIsTriedOnceOnANewOne() async throws {
        let http = StreamingHTTPClient()
        try await self.withServer(http: http) { server, client in
            server.enqueue(.stream(FakeChatServer.chunks(text: "First.")))
            #expect(try await client.complete(client.request([.user("Hi")])).text == "First.")
            try await eventually { http.idleConnections == 1 }
            // Taken from the pool, closed without a word: asked again at once on a new connection.
            server.enqueue(.hangUp, .stream(FakeChatServer.chunks(text: "Second.")))
            #expect(try await client.complete(client.request([.user("Hi")])).text == "Second.")
            #expect(server.requests.count == 3 && server.connectionsAccepted == 2)
            // A new connection closed unanswered is the retry policy's to judge, not asked again here.
            var once = client
            once.retry = ChatRetryPolicy(maxRetries: 0)
            try await eventually { http.idleConnections == 1 }
            server.enqueue(.hangUp, .hangUp, .stream(FakeChatServer.chunks(text: "Never.")))
            await #expect(throws: ChatError.transport("connection closed before the response ended")) {
                try await once.complete(once.request([.user("Hi")]))
            }
            #expect(server.requests.count == 5 && server.connectionsAccepted == 3)
        }
    }

    @Test func anAnswerNobodyAskedForClosesTheConnection() async throws {
        let http = StreamingHTTPClient()
        try await self.withServer(http: http) { server, client in
            server.enqueue(.stream(FakeChatServer.chunks(text: "First.")), .stream(FakeChatServer.chunks(text: "Second.")))
            #expect(try await client.complete(client.request([.user("Hi")])).text == "First.")
            try await eventually { http.idleConnections == 1 }
            // The server's 408 on the idle connection: the client no longer trusts it.
            try await server.sayTimedOutToIdleConnections()
            try await eventually { http.idleConnections == 0 }
            #expect(try await client.complete(client.request([.user("Hi")])).text == "Second.")
            #expect(server.requests.count == 2 && server.connectionsAccepted == 2)
        }
    }

    @Test func aCancelledReplyTakesItsConnectionWithIt() async throws {
        let http = StreamingHTTPClient()
        try await self.withServer(http: http) { server, client in
            server.enqueue(.stall(Array(FakeChatServer.chunks(text: "Let me check that for", size: 5).prefix(2))))
            let (heard, heardContinuation) = AsyncStream.makeStream(of: ChatStreamEvent.self)
            let call = client.call(client.request([.user("Hi")])) { heardContinuation.yield($0) }
            let ended = AsyncStream.makeStream(of: Result<Void, any Error>.self)
            call.start { ended.continuation.yield($0) }
            var iterator = heard.makeAsyncIterator()
            #expect(await iterator.next() == .content("Let m"))
            call.cancel()
            var results = ended.stream.makeAsyncIterator()
            let result = try #require(await results.next())
            #expect(throws: CancellationError.self) { try result.get() }
            // The rest of the stalled response would come first on that connection: it is closed.
            #expect(http.idleConnections == 0)
            server.enqueue(.stream(FakeChatServer.chunks(text: "Fresh.")))
            #expect(try await client.complete(client.request([.user("Hi")])).text == "Fresh.")
            #expect(server.connectionsAccepted == 2)
        }
    }

    @Test func anIdleConnectionIsClosedAfterItsIdleTime() async throws {
        let http = StreamingHTTPClient(idleTimeout: .milliseconds(20))
        try await self.withServer(http: http) { server, client in
            server.enqueue(.stream(FakeChatServer.chunks(text: "One.")), .stream(FakeChatServer.chunks(text: "Two.")))
            #expect(try await client.complete(client.request([.user("Hi")])).text == "One.")
            try await eventually { http.idleConnections == 1 }
            try await eventually { http.idleConnections == 0 }
            #expect(try await client.complete(client.request([.user("Hi")])).text == "Two.")
            #expect(server.connectionsAccepted == 2)
        }
    }

    @Test func aServerThatIsNotThereIsNamedAsSuch() async throws {
        // A port that was just free: nothing listens there.
        let server = FakeChatServer(apiKey: nil)
        let base = try await server.start()
        await server.stop()
        var client = ChatCompletionsClient(endpoint: ChatEndpoint(baseURL: base, apiKey: Self.key, model: "m"), http: StreamingHTTPClient(), logger: LogCapture().logger())
        client.retry = ChatRetryPolicy(maxRetries: 0)
        do {
            _ = try await client.complete(client.request([.user("Hi")]))
            Issue.record("a request reached a server that was not there")
        } catch ChatError.transport(let reason) {
            #expect(reason.hasPrefix("could not connect: ") && reason.contains("Connection refused"), "\(reason)")
            #expect(!reason.contains(Self.key))
        }
    }

    @Test func aURLThatIsNotHTTPFailsTheCallAndSendsNothing() async throws {
        let client = ChatCompletionsClient(endpoint: ChatEndpoint(baseURL: "ftp://example.com/v1", apiKey: nil, model: "m"), logger: LogCapture().logger())
        await #expect(throws: ChatError.transport("invalid URL")) { try await client.complete(client.request([.user("Hi")])) }
    }
}
