import NIOConcurrencyHelpers

/// A hang-up from the PBX side of a simulated call: fired once, awaited by any number of
/// waiters one after another (the ring wait, then the conversation), before or after it fires.
/// An `AsyncStream` cannot serve here: its one iterator ends for good when a waiter is cancelled.
final class HangupSignal: Sendable {
    private struct State {
        var fired = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var next = 0
    }

    private let state = NIOLockedValueBox(State())

    var fired: Bool { self.state.withLockedValue { $0.fired } }

    func fire() {
        let waiters = self.state.withLockedValue { state in
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the signal fires or the task is cancelled; `fired` tells which.
    func wait() async {
        let id = self.state.withLockedValue { state in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLockedValue { state in
                    guard !state.fired, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// A fresh stream that yields once when the signal fires (for `SimulatedCaller.run`); the
    /// task bridging it ends with `stop`.
    func stream() -> (AsyncStream<Void>, stop: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        let bridge = Task {
            await self.wait()
            if self.fired { continuation.yield() }
        }
        return (stream, { bridge.cancel() })
    }
}
