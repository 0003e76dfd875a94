import NIOCore

/// An event loop as a task executor. A task that prefers it (`withTaskExecutorPreference`,
/// `Task(executorPreference:)`) runs its nonisolated code on the loop's thread, between the
/// loop's reads and timers: what it writes to a channel on that loop goes out at once, and what
/// such a channel hands back to it resumes it without waking another thread.
///
/// Only for work that never blocks: a blocked job stalls every channel on the loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
