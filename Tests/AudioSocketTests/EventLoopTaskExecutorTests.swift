import AudioSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@Suite struct EventLoopTaskExecutorTests {
    @Test func aTaskThatPrefersALoopRunsOnItAcrossAwaitsAndInItsChildTasks() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let seen = await Task(executorPreference: executor) { () async -> [Bool] in
            var seen = [loop.inEventLoop]
            // Resumed by the loop itself, then by a timer on another thread.
            _ = try? await loop.submit { 1 }.get()
            seen.append(loop.inEventLoop)
            try? await Task.sleep(for: .milliseconds(5))
            seen.append(loop.inEventLoop)
            await withTaskGroup(of: Bool.self) { children in
                children.addTask { loop.inEventLoop }
                for await child in children { seen.append(child) }
            }
            return seen
        }.value
        #expect(seen == [true, true, true, true])
        // Without the preference, a task runs on the global executor's threads.
        #expect(await Task { loop.inEventLoop }.value == false)
        try await group.shutdownGracefully()
    }

    /// A task on `executor` that notes each word it reads, and on which loop it read it.
    struct Listener {
        let words: AsyncStream<String>.Continuation
        let heard = NIOLockedValueBox<[String]>([])
        let task: Task<Void, Never>

        init(on executor: EventLoopTaskExecutor, passingOnTo next: AsyncStream<String>.Continuation? = nil) {
            let (stream, words) = AsyncStream.makeStream(of: String.self)
            let heard = self.heard
            self.words = words
            self.task = Task(executorPreference: executor) {
                for await word in stream {
                    heard.withLockedValue { $0.append(executor.eventLoop.inEventLoop ? word : "\(word) off its loop") }
                    next?.yield(word)
                }
            }
        }

        /// Sends a first word and waits until it was read: the task then waits for the next.
        func waitUntilListening() async throws {
            self.words.yield("first")
            while self.heard.withLockedValue({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(1)) }
        }

        func waitUntilHeard(_ count: Int) async throws {
            while self.heard.withLockedValue({ $0.count < count }) { try await Task.sleep(for: .milliseconds(1)) }
        }

        func stop() async {
            self.words.finish()
            await self.task.value
        }
    }

    @Test func aHandOverFromTheLoopRunsTheTaskItResumedBeforeItReturns() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let listener = Listener(on: EventLoopTaskExecutor(loop))
        try await listener.waitUntilListening()
        let (handedOver, yielded) = try await loop.submit { () -> ([String], [String]) in
            EventLoopTaskExecutor.handOver { listener.words.yield("now") }
            let handedOver = listener.heard.withLockedValue { $0 }
            // Without the hand-over, the task waits for the loop.
            listener.words.yield("later")
            return (handedOver, listener.heard.withLockedValue { $0 })
        }.get()
        #expect(handedOver == ["first", "now"])
        #expect(yielded == ["first", "now"])
        try await listener.waitUntilHeard(3)
        #expect(listener.heard.withLockedValue { $0 } == ["first", "now", "later"])
        await listener.stop()
        try await group.shutdownGracefully()
    }

    @Test func whatTheResumedTaskResumesInTurnWaitsForTheLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let second = Listener(on: executor)
        let first = Listener(on: executor, passingOnTo: second.words)
        try await first.waitUntilListening()
        try await second.waitUntilHeard(1)
        let heard = try await loop.submit { () -> ([String], [String]) in
            EventLoopTaskExecutor.handOver { first.words.yield("now") }
            return (first.heard.withLockedValue { $0 }, second.heard.withLockedValue { $0 })
        }.get()
        #expect(heard.0 == ["first", "now"])
        #expect(heard.1 == ["first"])
        try await second.waitUntilHeard(2)
        #expect(second.heard.withLockedValue { $0 } == ["first", "now"])
        await first.stop()
        await second.stop()
        try await group.shutdownGracefully()
    }

    @Test func aHandOverInsideATaskOrForAnotherLoopLeavesTheTaskToItsLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let here = group.next()
        let there = group.next()
        let local = Listener(on: EventLoopTaskExecutor(here))
        let remote = Listener(on: EventLoopTaskExecutor(there))
        try await local.waitUntilListening()
        try await remote.waitUntilListening()
        // From a task on the same loop: the listener runs once this task's job is over.
        let fromTask = await Task(executorPreference: EventLoopTaskExecutor(here)) { () -> [String] in
            EventLoopTaskExecutor.handOver { local.words.yield("from a task") }
            return local.heard.withLockedValue { $0 }
        }.value
        #expect(fromTask == ["first"])
        // From this loop, for a task on another: it runs there, not here.
        try await here.submit { EventLoopTaskExecutor.handOver { remote.words.yield("from another loop") } }.get()
        try await local.waitUntilHeard(2)
        try await remote.waitUntilHeard(2)
        #expect(local.heard.withLockedValue { $0 } == ["first", "from a task"])
        #expect(remote.heard.withLockedValue { $0 } == ["first", "from another loop"])
        await local.stop()
        await remote.stop()
        try await group.shutdownGracefully()
    }
}
