import AudioSocket
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
}
