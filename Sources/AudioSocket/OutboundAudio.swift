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
/// An utterance takes audio of any length as it is made (`open`, then `play` from any thread,
/// without waiting) and tells when it has all gone out or was cut (`finish`). At most `capacity`
/// bytes (60 ms) wait in the queue ahead of real time; the rest waits behind it, and `clear()`
/// drops both, so barge-in takes effect at the next 20 ms frame. Exactly one 320-byte 0x10 frame
/// goes out every 20 ms, silence when nothing is queued; the only other frame ever sent is the
/// final 0x00 from `hangup()`.
///
/// Speech that arrives while the line is silent does not wait for the next slot: its first
/// frame goes out at once, in place of the next slot's frame, so a reply starts without the
/// 0–20 ms wait for the pacer and the call still gets one frame per slot.
public final class OutboundAudio: Sendable {
    private struct Utterance {
        var epoch: Int
        var start: Int
        /// The position after its last byte, once that byte is queued (or it was cut).
        var end: Int?
        var heardUpTo: Int?
        /// Samples the producer handed over.
        var given = 0
        /// A partial frame held back: it goes to the queue with the next samples or the end, so
        /// the queue never holds a partial frame of an utterance still being produced (which
        /// would go out late, after a silent frame).
        var carry: ByteBuffer?
        /// Between its first queued byte and its end: an empty queue then is an underrun.
        var open = false
        var ended = false
        /// Told when the utterance's first frame is written; dropped once called or cut.
        var onFirstFrame: (@Sendable (NIODeadline) -> Void)?
    }

    /// Audio waiting for room in the queue, in order.
    private struct Pending {
        var data: ByteBuffer
        /// The utterance this is the last data of: it closes once all of it is queued.
        var closes: Int?
    }

    private enum Phase {
        case open
        case hangingUp([CheckedContinuation<Void, Never>])
        case closed
    }

    private struct State {
        var queue: OutboundAudioQueue
        var pending: [Pending] = []
        /// `finish` calls waiting for their utterance to go out.
        var finishers: [(utterance: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var utterances: [Int: Utterance] = [:]
        var nextUtterance = 0
        var epoch = 0
        var phase = Phase.open
        /// The last frame written was silence (or none yet): new speech may start at once.
        var lineSilent = true
        /// A frame went out early for the next slot, which then sends nothing.
        var slotBorrowed = false
        var earlyStartScheduled = false

        /// Whether `finish` for `id` may return: all of it went out, it was cut, or the call is over.
        func isDone(_ id: Int) -> Bool {
            guard let utterance = self.utterances[id] else { return true }
            if case .closed = self.phase { return true }
            if utterance.heardUpTo != nil { return true }
            guard let end = utterance.end else { return false }
            return self.queue.consumedPosition >= end
        }
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

    /// Starts an utterance. `onFirstFrame` is told, on the event loop, when its first frame is
    /// written (never, if it is cut first).
    public func open(onFirstFrame: (@Sendable (NIODeadline) -> Void)? = nil) -> OutboundUtterance {
        let id = self.state.withLockedValue { state in
            let id = state.nextUtterance
            state.nextUtterance += 1
            state.utterances[id] = Utterance(epoch: state.epoch, start: state.queue.queuedPosition, onFirstFrame: onFirstFrame)
            return id
        }
        return OutboundUtterance(outbound: self, id: id)
    }

    /// Plays one block of 8 kHz samples as an utterance.
    @discardableResult
    public func speak(_ samples: [Int16]) async -> SpeakResult {
        let utterance = self.open()
        _ = utterance.play(samples)
        return await utterance.finish()
    }

    /// Barge-in: drops all queued and pending audio; the next frame is silence.
    public func clear() {
        let finishers = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            let heardUpTo = state.queue.clear()
            state.epoch += 1
            state.pending.removeAll()
            for id in state.utterances.keys where state.utterances[id]?.heardUpTo == nil {
                Self.close(id, in: &state)
                state.utterances[id]?.heardUpTo = heardUpTo
                state.utterances[id]?.onFirstFrame = nil
            }
            defer { state.finishers.removeAll() }
            return state.finishers.map(\.continuation)
        }
        for finisher in finishers { finisher.resume() }
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

    /// Whether someone waits in `finish` for an utterance to go out.
    var hasWaiters: Bool {
        self.state.withLockedValue { !$0.finishers.isEmpty }
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

    /// Queues the next samples of utterance `id`; false once it was cut or the call is no longer open.
    fileprivate func play(_ samples: [Int16], utterance id: Int) -> Bool {
        var data = self.channel.allocator.buffer(capacity: samples.count * 2)
        data.writePCMSamples(samples)
        let (accepted, startEarly) = self.state.withLockedValue { state -> (Bool, Bool) in
            guard let record = state.utterances[id], record.epoch == state.epoch, !record.ended, case .open = state.phase else { return (false, false) }
            state.utterances[id]!.given += samples.count
            if var carried = record.carry {
                state.utterances[id]!.carry = nil
                carried.writeBuffer(&data)
                data = carried
            }
            let partial = data.readableBytes % OutboundAudioQueue.frameBytes
            if partial > 0 {
                state.utterances[id]!.carry = data.getSlice(at: data.writerIndex - partial, length: partial)
                data.moveWriterIndex(to: data.writerIndex - partial)
            }
            return (true, self.queue(&data, of: id, isLast: false, in: &state))
        }
        if startEarly { self.startEarlyOnTheLoop() }
        return accepted
    }

    /// Ends utterance `id` (its held-back partial frame goes to the queue) and waits until it
    /// has all gone out, was cut, or the call ended.
    fileprivate func finish(utterance id: Int) async -> SpeakResult {
        let (done, startEarly) = self.state.withLockedValue { state -> (Bool, Bool) in
            var startEarly = false
            if let record = state.utterances[id], record.epoch == state.epoch, !record.ended, case .open = state.phase {
                var rest = record.carry ?? ByteBuffer()
                state.utterances[id]!.carry = nil
                startEarly = self.queue(&rest, of: id, isLast: true, in: &state)
            } else {
                // Cut, or the call is ending: nothing more of it will be queued.
                Self.close(id, in: &state)
            }
            return (state.isDone(id), startEarly)
        }
        if startEarly { self.startEarlyOnTheLoop() }
        if !done {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = self.state.withLockedValue { state -> Bool in
                    if state.isDone(id) { return true }
                    state.finishers.append((id, continuation))
                    return false
                }
                if done { continuation.resume() }
            }
        }
        return self.state.withLockedValue { state -> SpeakResult in
            guard let utterance = state.utterances.removeValue(forKey: id) else { return SpeakResult(completed: false, samplesPlayed: 0, samplesGiven: 0) }
            let end = utterance.end ?? max(utterance.start, state.queue.queuedPosition)
            let heard = min(utterance.heardUpTo ?? min(end, state.queue.consumedPosition), end)
            let completed = utterance.heardUpTo == nil && utterance.end != nil && state.queue.consumedPosition >= end && utterance.given * 2 == end - utterance.start
            return SpeakResult(completed: completed, samplesPlayed: max(0, heard - utterance.start) / 2, samplesGiven: utterance.given)
        }
    }

    /// Queues `data` of utterance `id` behind whatever waits; true when it should start early (the
    /// line is silent), which the caller does once the lock is released.
    /// The utterance opens with its first queued byte; with `isLast` it ends as its last byte is queued.
    private func queue(_ data: inout ByteBuffer, of id: Int, isLast: Bool, in state: inout State) -> Bool {
        if data.readableBytes > 0, let record = state.utterances[id], !record.open {
            state.utterances[id]!.open = true
            state.queue.openUtterance()
        }
        if state.pending.isEmpty { state.queue.enqueue(&data) }
        if data.readableBytes > 0 || (isLast && !state.pending.isEmpty) {
            state.pending.append(Pending(data: data, closes: isLast ? id : nil))
        } else if isLast {
            Self.close(id, in: &state)
        }
        guard state.lineSilent && !state.slotBorrowed && !state.earlyStartScheduled && state.queue.hasFrameReady else { return false }
        // Whoever queues audio after this sees the early start on its way.
        state.earlyStartScheduled = true
        return true
    }

    /// At once when the audio came on the call's own loop (from a provider's socket there), else
    /// on the loop: one thread hop.
    private func startEarlyOnTheLoop() {
        if self.channel.eventLoop.inEventLoop {
            self.startEarly()
        } else {
            self.channel.eventLoop.execute { self.startEarly() }
        }
    }

    /// The utterance's last byte is queued (or it was cut): its end is known.
    private static func close(_ id: Int, in state: inout State) {
        guard let record = state.utterances[id], !record.ended else { return }
        state.utterances[id]!.ended = true
        state.utterances[id]!.end = state.queue.queuedPosition
        if record.open {
            state.utterances[id]!.open = false
            state.queue.closeUtterance()
        }
    }

    // MARK: - pacer side (on the channel's event loop)

    /// What one turn of the pacer (or an early start) took from the state, to act on outside the lock.
    private struct Taken {
        var frames: [OutboundAudioQueue.Frame] = []
        var finished: [CheckedContinuation<Void, Never>] = []
        var started: [@Sendable (NIODeadline) -> Void] = []
    }

    /// Takes the next frame from the queue, refills it from pending audio, and collects whoever
    /// that frame releases.
    private static func take(late: Bool, from state: inout State, into taken: inout Taken) {
        let frame = state.queue.nextFrame(late: late)
        taken.frames.append(frame)
        if case .silence = frame { state.lineSilent = true } else { state.lineSilent = false }
        while !state.pending.isEmpty, state.queue.freeBytes > 0 {
            state.queue.enqueue(&state.pending[0].data)
            guard state.pending[0].data.readableBytes == 0 else { break }
            if let closing = state.pending.removeFirst().closes { Self.close(closing, in: &state) }
        }
        let consumed = state.queue.consumedPosition
        var index = 0
        while index < state.finishers.count {
            if state.isDone(state.finishers[index].utterance) {
                taken.finished.append(state.finishers.remove(at: index).continuation)
            } else {
                index += 1
            }
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
        for continuation in taken.finished { continuation.resume() }
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
            if case .hangingUp = state.phase, state.queue.queuedBytes == 0, state.pending.isEmpty, state.queue.openUtterances == 0 {
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
        let (finishers, hangups) = self.state.withLockedValue { state in
            let hangups: [CheckedContinuation<Void, Never>]
            if case .hangingUp(let waiters) = state.phase { hangups = waiters } else { hangups = [] }
            state.phase = .closed
            state.pending.removeAll()
            defer { state.finishers.removeAll() }
            return (state.finishers.map(\.continuation), hangups)
        }
        for finisher in finishers { finisher.resume() }
        for hangup in hangups { hangup.resume() }
    }
}

/// One utterance of a call's outbound audio, fed from any thread as its audio is made.
public struct OutboundUtterance: Sendable {
    let outbound: OutboundAudio
    let id: Int

    /// Queues the next samples, without waiting. False once the utterance was cut (barge-in) or
    /// the call is no longer open: the producer should stop then.
    public func play(_ samples: [Int16]) -> Bool {
        self.outbound.play(samples, utterance: self.id)
    }

    /// The call's event loop, which writes the audio.
    public var eventLoop: any EventLoop { self.outbound.channel.eventLoop }

    /// Ends the utterance and waits until all of it has gone out, it was cut, or the call ended.
    /// Call it exactly once.
    public func finish() async -> SpeakResult {
        await self.outbound.finish(utterance: self.id)
    }
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
