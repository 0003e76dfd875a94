import Foundation

/// One dedicated thread that runs submitted jobs in order.
///
/// The offline engines are C libraries that block while they compute and, for espeak-ng and
/// flite, keep global state. Running them here keeps that work off the cooperative thread
/// pool and off the event loops that pace audio.
final class SerialWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    /// Queues `job`; returns at once. Jobs submitted after `stop()` are dropped.
    func submit(_ job: @escaping @Sendable () -> Void) {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard !self.stopping else { return }
        self.jobs.append(job)
        self.condition.signal()
    }

    /// Runs `job` on the worker and returns its result.
    func run<Result: Sendable>(_ job: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            self.condition.lock()
            let accepted = !self.stopping
            if accepted {
                self.jobs.append { continuation.resume(with: Swift.Result { try job() }) }
                self.condition.signal()
            }
            self.condition.unlock()
            if !accepted { continuation.resume(throwing: CancellationError()) }
        }
    }

    /// Lets the queued jobs finish, then ends the thread.
    func stop() {
        self.condition.lock()
        self.stopping = true
        self.condition.signal()
        self.condition.unlock()
    }

    private func loop() {
        while true {
            self.condition.lock()
            while self.jobs.isEmpty && !self.stopping { self.condition.wait() }
            if self.jobs.isEmpty {
                self.condition.unlock()
                return
            }
            let batch = self.jobs
            self.jobs.removeAll(keepingCapacity: true)
            self.condition.unlock()
            for job in batch { job() }
        }
    }
}
