import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        if self.eventLoop.inEventLoop, let handOver = HandOver.current {
            handOver.resumed.append((job, self))
            return
        }
        self.eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Runs `body`, then at once the tasks it resumed on this thread's loop, rather than after
    /// the loop's other reads and queued work. For what a channel's read hands to a task
    /// waiting on the same loop (a model's first words to the call that speaks them): the task
    /// goes on inside the read.
    ///
    /// Call it with no lock held, from an event loop's read or callback. Inside a task it only
    /// runs `body`. What the resumed tasks resume in turn waits for the loop as usual.
    public static func handOver(_ body: () -> Void) {
        guard HandOver.current == nil, withUnsafeCurrentTask(body: { $0 == nil }) else { return body() }
        let handOver = HandOver()
        HandOver.current = handOver
        body()
        HandOver.current = nil
        for (job, executor) in handOver.resumed { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
    }
}

/// The tasks a `handOver` body resumed, kept on its thread until the body returns.
private final class HandOver {
    var resumed: [(UnownedJob, EventLoopTaskExecutor)] = []

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// This thread's hand-over in progress.
    static var current: HandOver? {
        get { pthread_getspecific(key).map { Unmanaged<HandOver>.fromOpaque($0).takeUnretainedValue() } }
        set {
            if let old = pthread_getspecific(key) { Unmanaged<HandOver>.fromOpaque(old).release() }
            pthread_setspecific(key, newValue.map { Unmanaged.passRetained($0).toOpaque() })
        }
    }
}
