import NIOConcurrencyHelpers
import NIOCore

/// How an utterance ended.
public struct SpeakResult: Sendable, Hashable {
    /// True when every sample went out; false when `clear()` cut it or the call ended.
    public var completed: Bool
    /// Samples of this utterance that actually went out to Asterisk.
    public var samplesPlayed: Int
    /// Samples the producer handed over.
    public var samplesGiven: Int
}

/// The outbound side of one call: what the engine says, paced by the event loop's `FramePacer`.
///
/// `speak` hands over audio of any length and returns when it has all gone out (or was cut);
/// at most `capacity` bytes (60 ms) wait ahead of real time, so `clear()` takes effect at the
/// next 20 ms frame. Exactly one 320-byte 0x10 frame goes out every 20 ms, silence when
/// nothing is queued; the only other frame ever sent is the final 0x00 from `hangup()`.
///
/// Speech that arrives while the line is silent does not wait for the next slot: its first
/// frame goes out at once, in place of the next slot's frame, so a reply starts without the
/// 0–20 ms wait for the pacer and the call still gets one frame per slot.
public final class OutboundAudio: Sendable {
    private struct Utterance {
        var start: Int
        var end: Int?
        var heardUpTo: Int?
        /// Between its first queued byte and its end: an empty queue then is an underrun.
        var open = false
        var ended = false
        /// Told when the utterance's first frame is written; dropped once called or cut.
        var onFirstFrame: (@Sendable (NIODeadline) -> Void)?
    }

    private struct Writer {
        var data: ByteBuffer
        /// The utterance this is the last data of: it closes once all of it is queued.
        var closes: Int?
        var continuation: CheckedContinuation<Bool, Never>
    }

    private enum Phase {
        case open
        case hangingUp([CheckedContinuation<Void, Never>])
        case closed
    }

    private struct State {
        var queue: OutboundAudioQueue
        var writers: [Writer] = []
        var drainWaiters: [(position: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var utterances: [Int: Utterance] = [:]
        var nextUtterance = 0
        var epoch = 0
        var phase = Phase.open
        /// The last frame written was silence (or none yet): new speech may start at once.
        var lineSilent = true
        /// A frame went out early for the next slot, which then sends nothing.
        var slotBorrowed = false
        var earlyStartScheduled = false
    }

    private let state: NIOLockedValueBox<State>
    let channel: any Channel
    private static let audioHeader: [UInt8] = [AudioFormat.slin8.rawValue, 0x01, 0x40]
    private let silence: ByteBuffer

    init(channel: any Channel, capacity: Int) {
        self.channel = channel
        self.state = NIOLockedValueBox(State(queue: OutboundAudioQueue(capacity: capacity, allocator: channel.allocator)))
        var silence = channel.allocator.buffer(capacity: 3 + OutboundAudioQueue.frameBytes)
        silence.writeBytes(Self.audioHeader)
        silence.writeRepeatingByte(0, count: OutboundAudioQueue.frameBytes)
        self.silence = silence
    }

    /// Counters so far.
    public var statistics: OutboundAudioStatistics {
        self.state.withLockedValue { $0.queue.statistics }
    }

    /// Plays 8 kHz samples arriving as chunks (for example from streaming TTS) as one utterance.
    /// Underruns are counted while the sequence is still producing. `onFirstFrame` is told, on
    /// the event loop, when the utterance's first frame is written (never, if it is cut first).
    public func speak<Chunks: AsyncSequence>(
        _ chunks: Chunks,
        onFirstFrame: (@Sendable (NIODeadline) -> Void)? = nil
    ) async throws -> SpeakResult where Chunks.Element == [Int16] {
        let opened: (id: Int, epoch: Int)? = self.state.withLockedValue { state in
            guard case .open = state.phase else { return nil }
            let id = state.nextUtterance
            state.nextUtterance += 1
            state.utterances[id] = Utterance(start: state.queue.queuedPosition, onFirstFrame: onFirstFrame)
            return (id, state.epoch)
        }
        guard let opened else { return SpeakResult(completed: false, samplesPlayed: 0, samplesGiven: 0) }

        // Whole frames go to the queue at once; a partial last frame is held back and handed
        // over together with the end of the utterance, so the queue never holds a partial frame
        // of an utterance still being produced (which would go out late, after a silent frame).
        var given = 0
        var failure: (any Error)?
        var carry = self.channel.allocator.buffer(capacity: OutboundAudioQueue.frameBytes * 4)
        do {
            for try await chunk in chunks {
                given += chunk.count
                carry.writePCMSamples(chunk)
                let whole = carry.readableBytes - carry.readableBytes % OutboundAudioQueue.frameBytes
                guard whole > 0 else { continue }
                let frames = carry.readSlice(length: whole)!
                carry.discardReadBytes()
                guard await self.enqueue(frames, epoch: opened.epoch, utterance: opened.id, isLast: false) else { break }
            }
        } catch {
            failure = error
        }
        if failure == nil {
            _ = await self.enqueue(carry, epoch: opened.epoch, utterance: opened.id, isLast: true)
        }

        let end: Int? = self.state.withLockedValue { state in
            Self.close(opened.id, in: &state)
            state.utterances[opened.id]?.end = state.queue.queuedPosition
            guard state.epoch == opened.epoch, case .open = state.phase else { return nil }
            return state.queue.queuedPosition
        }
        if let end {
            await self.waitUntilConsumed(end)
        }
        let result = self.state.withLockedValue { state -> SpeakResult in
            let utterance = state.utterances.removeValue(forKey: opened.id)!
            let end = utterance.end ?? utterance.start
            let heard = min(utterance.heardUpTo ?? min(end, state.queue.consumedPosition), end)
            let completed = utterance.heardUpTo == nil && state.queue.consumedPosition >= end && failure == nil && given * 2 == end - utterance.start
            return SpeakResult(completed: completed, samplesPlayed: max(0, heard - utterance.start) / 2, samplesGiven: given)
        }
        if let failure { throw failure }
        return result
    }

    /// Plays one block of 8 kHz samples as an utterance.
    @discardableResult
    public func speak(_ samples: [Int16]) async -> SpeakResult {
        // A one-element sequence never throws.
        (try? await self.speak(SingleChunk(samples: samples))) ?? SpeakResult(completed: false, samplesPlayed: 0, samplesGiven: samples.count)
    }

    /// Barge-in: drops all queued and pending audio; the next frame is silence.
    public func clear() {
        let resumed = self.state.withLockedValue { state -> ([Writer], [CheckedContinuation<Void, Never>]) in
            let heardUpTo = state.queue.clear()
            state.epoch += 1
            for id in state.utterances.keys where state.utterances[id]?.heardUpTo == nil {
                state.utterances[id]?.heardUpTo = heardUpTo
                state.utterances[id]?.onFirstFrame = nil
            }
            let writers = state.writers
            state.writers.removeAll()
            let drains = state.drainWaiters.map(\.continuation)
            state.drainWaiters.removeAll()
            return (writers, drains)
        }
        for writer in resumed.0 { writer.continuation.resume(returning: false) }
        for drain in resumed.1 { drain.resume() }
    }

    /// Ends the call gracefully: lets queued audio finish, sends the 0x00 hangup frame and closes.
    /// Returns once the call is over; at once if it already is.
    public func hangup() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = self.state.withLockedValue { state -> Bool in
                switch state.phase {
                case .open:
                    state.phase = .hangingUp([continuation])
                    return false
                case .hangingUp(let waiters):
                    state.phase = .hangingUp(waiters + [continuation])
                    return false
                case .closed:
                    return true
                }
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Whether a producer is parked, waiting for room or for its audio to go out.
    var hasWaiters: Bool {
        self.state.withLockedValue { !$0.writers.isEmpty || !$0.drainWaiters.isEmpty }
    }

    /// Whether `hangup()` is waiting for queued audio.
    var isHangingUp: Bool {
        self.state.withLockedValue { if case .hangingUp = $0.phase { return true } else { return false } }
    }

    /// Whether the call has ended.
    public var isClosed: Bool {
        self.state.withLockedValue { if case .closed = $0.phase { return true } else { return false } }
    }

    // MARK: - producer side

    /// Queues `data`, waiting for room; false when cleared or closed before all of it fit.
    /// The utterance opens with its first queued byte; with `isLast` it ends as the last byte is queued.
    private func enqueue(_ data: ByteBuffer, epoch: Int, utterance: Int, isLast: Bool) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let outcome: Bool? = self.state.withLockedValue { state in
                guard state.epoch == epoch else { return false }
                guard case .open = state.phase else { return false }
                var data = data
                if data.readableBytes > 0, let record = state.utterances[utterance], !record.open, !record.ended {
                    state.utterances[utterance]?.open = true
                    state.queue.openUtterance()
                }
                if state.writers.isEmpty { state.queue.enqueue(&data) }
                defer {
                    if state.lineSilent && !state.slotBorrowed && !state.earlyStartScheduled && state.queue.hasFrameReady {
                        state.earlyStartScheduled = true
                        // Submitted under the lock (`execute` never runs the task inline): whoever
                        // sees this producer parked also sees the early start already submitted.
                        self.channel.eventLoop.execute { self.startEarly() }
                    }
                }
                if data.readableBytes == 0 {
                    if isLast { Self.close(utterance, in: &state) }
                    return true
                }
                state.writers.append(Writer(data: data, closes: isLast ? utterance : nil, continuation: continuation))
                return nil
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }

    private static func close(_ utterance: Int, in state: inout State) {
        guard let record = state.utterances[utterance], !record.ended else { return }
        state.utterances[utterance]?.ended = true
        if record.open {
            state.utterances[utterance]?.open = false
            state.queue.closeUtterance()
        }
    }

    private func waitUntilConsumed(_ position: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.state.withLockedValue { state -> Bool in
                if state.queue.consumedPosition >= position { return true }
                if case .closed = state.phase { return true }
                state.drainWaiters.append((position, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: - pacer side (on the channel's event loop)

    /// What one turn of the pacer (or an early start) took from the state, to act on outside the lock.
    private struct Taken {
        var frames: [OutboundAudioQueue.Frame] = []
        var writersDone: [CheckedContinuation<Bool, Never>] = []
        var drained: [CheckedContinuation<Void, Never>] = []
        var started: [@Sendable (NIODeadline) -> Void] = []
    }

    /// Takes the next frame from the queue, refills it from waiting writers, and collects
    /// whoever that frame releases.
    private static func take(late: Bool, from state: inout State, into taken: inout Taken) {
        let frame = state.queue.nextFrame(late: late)
        taken.frames.append(frame)
        if case .silence = frame { state.lineSilent = true } else { state.lineSilent = false }
        while var writer = state.writers.first, state.queue.freeBytes > 0 {
            state.queue.enqueue(&writer.data)
            if writer.data.readableBytes == 0 {
                if let closing = writer.closes { Self.close(closing, in: &state) }
                taken.writersDone.append(writer.continuation)
                state.writers.removeFirst()
            } else {
                state.writers[0] = writer
            }
        }
        let consumed = state.queue.consumedPosition
        state.drainWaiters.removeAll { waiter in
            guard waiter.position <= consumed else { return false }
            taken.drained.append(waiter.continuation)
            return true
        }
        guard case .speech = frame else { return }
        for (id, utterance) in state.utterances where utterance.onFirstFrame != nil && utterance.start < consumed {
            taken.started.append(utterance.onFirstFrame!)
            state.utterances[id]?.onFirstFrame = nil
        }
    }

    /// Writes what was taken, wakes who waits. On the event loop.
    private func deliver(_ taken: Taken) {
        if self.channel.isWritable {
            for frame in taken.frames {
                switch frame {
                case .silence:
                    self.channel.write(self.silence, promise: nil)
                case .speech(let payload):
                    var buffer = self.channel.allocator.buffer(capacity: 3 + OutboundAudioQueue.frameBytes)
                    buffer.writeBytes(Self.audioHeader)
                    buffer.writeImmutableBuffer(payload)
                    self.channel.write(buffer, promise: nil)
                }
            }
        }
        // Before the producers wake: an utterance's start is reported before its end.
        if !taken.started.isEmpty {
            let now = self.channel.eventLoop.now
            for started in taken.started { started(now) }
        }
        for continuation in taken.writersDone { continuation.resume(returning: true) }
        for continuation in taken.drained { continuation.resume() }
    }

    /// Speech arrived on a silent line: its first frame goes now, in place of the next slot's.
    private func startEarly() {
        var taken = Taken()
        let send = self.state.withLockedValue { state -> Bool in
            state.earlyStartScheduled = false
            guard case .open = state.phase, state.lineSilent, !state.slotBorrowed, state.queue.hasFrameReady else { return false }
            state.slotBorrowed = true
            Self.take(late: false, from: &state, into: &taken)
            return true
        }
        guard send else { return }
        self.deliver(taken)
        self.channel.flush()
    }

    /// Writes this slot's frames; returns false once the call is over and should be dropped.
    func emit(lateness: [Bool], skipped: Int) -> Bool {
        var taken = Taken()
        var hangupNow = false
        let alive = self.state.withLockedValue { state -> Bool in
            if case .closed = state.phase { return false }
            // Hang up in the first slot with nothing left to say; that slot carries only the 0x00 frame.
            if case .hangingUp = state.phase, state.queue.queuedBytes == 0, state.writers.isEmpty, state.queue.openUtterances == 0 {
                hangupNow = true
                return true
            }
            if skipped > 0 { state.queue.recordSkipped(skipped) }
            for (index, late) in lateness.enumerated() {
                // This slot's frame already went out early.
                if index == 0 && state.slotBorrowed {
                    state.slotBorrowed = false
                    continue
                }
                Self.take(late: late, from: &state, into: &taken)
            }
            return true
        }
        guard alive else { return false }
        self.deliver(taken)
        if hangupNow {
            var buffer = self.channel.allocator.buffer(capacity: 3)
            AudioSocketFrame.hangup.encode(into: &buffer)
            self.channel.writeAndFlush(buffer, promise: nil)
            self.channel.close(promise: nil)
            self.closed()
            return false
        }
        self.channel.flush()
        return true
    }

    /// The connection is gone: wake everyone who waits.
    func closed() {
        let (writers, drains, hangups) = self.state.withLockedValue { state in
            let hangups: [CheckedContinuation<Void, Never>]
            if case .hangingUp(let waiters) = state.phase { hangups = waiters } else { hangups = [] }
            state.phase = .closed
            defer {
                state.writers.removeAll()
                state.drainWaiters.removeAll()
            }
            return (state.writers.map(\.continuation), state.drainWaiters.map(\.continuation), hangups)
        }
        for writer in writers { writer.resume(returning: false) }
        for drain in drains { drain.resume() }
        for hangup in hangups { hangup.resume() }
    }
}

/// A sequence of one chunk.
private struct SingleChunk: AsyncSequence, Sendable {
    typealias Element = [Int16]
    let samples: [Int16]

    struct AsyncIterator: AsyncIteratorProtocol {
        var samples: [Int16]?
        mutating func next() async -> [Int16]? {
            defer { self.samples = nil }
            return self.samples
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(samples: self.samples) }
}

/// One clock per event loop: every 20 ms slot, each call on the loop gets its frame.
///
/// Calls are spread over `phases` staggered starts within the slot (every 2.5 ms with the
/// default eight), each phase with its own timetable: a loop writes an eighth of its calls at a
/// time rather than all of them at once, so the last frame of a slot waits for an eighth of
/// the writes. Every call still gets exactly one frame per 20 ms. All state is touched on
/// `eventLoop` only.
final class FramePacer: @unchecked Sendable {
    private struct Phase {
        var outlets: [ObjectIdentifier: OutboundAudio] = [:]
        var schedule: PacerSchedule?
    }

    let eventLoop: any EventLoop
    private var phases: [Phase]
    private var phaseOf: [ObjectIdentifier: Int] = [:]
    /// Slot 0 of phase 0 while the clock runs.
    private var origin: NIODeadline?
    private var scheduled: (task: Scheduled<Void>, deadline: NIODeadline)?
    private let lateTolerance: TimeAmount
    private let onLateness: (@Sendable (TimeAmount) -> Void)?

    /// - Parameter onLateness: told after every phase's slot how late its last frame was written
    ///   (after the frames of every call of that phase on this loop).
    init(
        eventLoop: any EventLoop, phases: Int = 8, lateTolerance: TimeAmount = .milliseconds(10),
        onLateness: (@Sendable (TimeAmount) -> Void)? = nil
    ) {
        self.eventLoop = eventLoop
        self.phases = Array(repeating: Phase(), count: max(1, phases))
        self.lateTolerance = lateTolerance
        self.onLateness = onLateness
    }

    var callCount: Int {
        self.eventLoop.preconditionInEventLoop()
        return self.phaseOf.count
    }

    /// Starts pacing `outlet` in the least busy phase. Its first frame goes out at once if the
    /// clock is idle, else in its phase's next slot.
    func register(_ outlet: OutboundAudio) {
        self.eventLoop.preconditionInEventLoop()
        let now = self.eventLoop.now
        let idle = self.origin == nil
        let origin = self.origin ?? now
        self.origin = origin
        let phase = self.phases.indices.min { self.phases[$0].outlets.count < self.phases[$1].outlets.count }!
        if self.phases[phase].schedule == nil {
            // The phase's next slot boundary from now.
            let offset = origin + .nanoseconds(PacerSchedule.period.nanoseconds * Int64(phase) / Int64(self.phases.count))
            let behind = max(0, (now - offset).nanoseconds)
            let slots = (behind + PacerSchedule.period.nanoseconds - 1) / PacerSchedule.period.nanoseconds
            self.phases[phase].schedule = PacerSchedule(start: offset + .nanoseconds(slots * PacerSchedule.period.nanoseconds), lateTolerance: self.lateTolerance)
        }
        let id = ObjectIdentifier(outlet)
        self.phases[phase].outlets[id] = outlet
        self.phaseOf[id] = phase
        if idle {
            self.tick()
        } else {
            self.scheduleNext()
        }
    }

    func unregister(_ outlet: OutboundAudio) {
        self.eventLoop.preconditionInEventLoop()
        let id = ObjectIdentifier(outlet)
        guard let phase = self.phaseOf.removeValue(forKey: id) else { return }
        self.phases[phase].outlets[id] = nil
        if self.phases[phase].outlets.isEmpty { self.phases[phase].schedule = nil }
        self.scheduleNext()
    }

    private func tick() {
        self.scheduled = nil
        let now = self.eventLoop.now
        for index in self.phases.indices {
            guard var schedule = self.phases[index].schedule else { continue }
            let tick = schedule.tick(now: now)
            self.phases[index].schedule = schedule
            guard !tick.lateness.isEmpty || tick.skipped > 0 else { continue }
            for (id, outlet) in self.phases[index].outlets where !outlet.emit(lateness: tick.lateness, skipped: tick.skipped) {
                self.phases[index].outlets[id] = nil
                self.phaseOf[id] = nil
            }
            if let onLateness = self.onLateness, !tick.lateness.isEmpty {
                onLateness(self.eventLoop.now - (schedule.nextDeadline - PacerSchedule.period))
            }
            if self.phases[index].outlets.isEmpty { self.phases[index].schedule = nil }
        }
        self.scheduleNext()
    }

    /// Arms the timer for the earliest phase slot, or stops the clock when no call is left.
    private func scheduleNext() {
        guard let next = self.phases.compactMap(\.schedule?.nextDeadline).min() else {
            self.scheduled?.task.cancel()
            self.scheduled = nil
            self.origin = nil
            return
        }
        if let scheduled = self.scheduled {
            if scheduled.deadline == next { return }
            scheduled.task.cancel()
        }
        self.scheduled = (self.eventLoop.scheduleTask(deadline: next) { [self] in self.tick() }, next)
    }
}
