import NIOConcurrencyHelpers
import Speech

/// The call's way to its recogniser session, which opens while the greeting plays (a local
/// decoder can take half a second, seconds on a loaded machine). Audio and a finalise request
/// that come before the session is open wait here, up to `backlogLimit` samples, and go to the
/// session in order the moment it opens: the caller's first words are never lost to a slow
/// start. Closing it closes the session, whether it is open yet or opens later.
final class RecognitionLine: Sendable {
    private enum State {
        case opening(backlog: [[Int16]], samples: Int, finalize: Bool)
        case open(any RecognitionSession)
        case closed
    }

    /// 10 s of 8 kHz audio.
    let backlogLimit: Int
    private let state = NIOLockedValueBox(State.opening(backlog: [], samples: 0, finalize: false))

    init(backlogLimit: Int = 80_000) {
        self.backlogLimit = backlogLimit
    }

    func feed(_ samples: [Int16]) {
        self.state.withLockedValue { state in
            switch state {
            case .opening(var backlog, var count, let finalize):
                backlog.append(samples)
                count += samples.count
                // Beyond the limit the oldest audio goes: the latest words matter most.
                while count > self.backlogLimit, let first = backlog.first {
                    count -= first.count
                    backlog.removeFirst()
                }
                state = .opening(backlog: backlog, samples: count, finalize: finalize)
            case .open(let session):
                // Never blocks: the recogniser queues it.
                session.feed(samples)
            case .closed:
                break
            }
        }
    }

    func finalize() {
        self.state.withLockedValue { state in
            switch state {
            case .opening(let backlog, let count, _): state = .opening(backlog: backlog, samples: count, finalize: true)
            case .open(let session): session.finalize()
            case .closed: break
            }
        }
    }

    /// The session opened: it gets the backlog, then any finalise request, then live audio.
    /// Returns false (and closes the session) when the line was closed meanwhile.
    func attach(_ session: any RecognitionSession) -> Bool {
        let attached = self.state.withLockedValue { state -> Bool in
            guard case .opening(let backlog, _, let finalize) = state else { return false }
            for samples in backlog { session.feed(samples) }
            if finalize { session.finalize() }
            state = .open(session)
            return true
        }
        if !attached { session.close() }
        return attached
    }

    /// The open session failed: it is closed, and audio waits again for the next one.
    func detach() {
        let session = self.state.withLockedValue { state -> (any RecognitionSession)? in
            guard case .open(let session) = state else { return nil }
            state = .opening(backlog: [], samples: 0, finalize: false)
            return session
        }
        session?.close()
    }

    func close() {
        let session = self.state.withLockedValue { state -> (any RecognitionSession)? in
            defer { state = .closed }
            if case .open(let session) = state { return session }
            return nil
        }
        session?.close()
    }
}
