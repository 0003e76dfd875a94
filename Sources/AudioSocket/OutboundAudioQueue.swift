import NIOCore

/// What a call sent to Asterisk, counted by the pacer.
public struct OutboundAudioStatistics: Sendable, Hashable {
    /// Every 0x10 frame written, speech or silence.
    public var framesSent = 0
    public var speechFrames = 0
    public var silenceFrames = 0
    /// Frames that went out as silence while an utterance was still being produced.
    public var underruns = 0
    /// Frames that went out more than the pacer's tolerance after their 20 ms slot.
    public var lateFrames = 0
    /// Slots skipped because the event loop fell more than 60 ms behind.
    public var skippedSlots = 0
    /// Queued speech bytes dropped by `clear()` (barge-in).
    public var clearedBytes = 0

    public init() {}
}

/// The audio waiting to go out on one call, as a value: at most `capacity` bytes queued ahead of
/// real time, one 320-byte frame taken per 20 ms slot.
///
/// Positions count bytes in the order they were queued; every queued byte is eventually either
/// sent or dropped by `clear()`, which lets a caller of `speak` know exactly how much of an
/// utterance reached the line.
public struct OutboundAudioQueue: Sendable {
    /// 20 ms of 8 kHz 16-bit mono.
    public static let frameBytes = 320

    public let capacity: Int
    private var queued: ByteBuffer
    /// Bytes ever queued (the position of the next byte queued).
    public private(set) var queuedPosition = 0
    /// Bytes ever consumed, sent or dropped (the position of the next byte to go out).
    public private(set) var consumedPosition = 0
    /// Utterances whose producer has not finished: an empty queue then is an underrun.
    public private(set) var openUtterances = 0
    public private(set) var statistics = OutboundAudioStatistics()

    /// - Parameter capacity: bytes that may wait ahead of real time; rounded up to whole frames.
    public init(capacity: Int = 3 * OutboundAudioQueue.frameBytes, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        let frames = max(1, (capacity + Self.frameBytes - 1) / Self.frameBytes)
        self.capacity = frames * Self.frameBytes
        self.queued = allocator.buffer(capacity: self.capacity)
    }

    public var queuedBytes: Int { self.queued.readableBytes }
    /// Whether the next frame would be speech: a whole frame queued, or the end of an utterance.
    public var hasFrameReady: Bool {
        self.queued.readableBytes >= Self.frameBytes || (self.queued.readableBytes > 0 && self.openUtterances == 0)
    }
    public var freeBytes: Int { self.capacity - self.queued.readableBytes }

    /// Moves as much of `pcm` as fits into the queue; the rest stays in `pcm`.
    public mutating func enqueue(_ pcm: inout ByteBuffer) {
        let count = min(self.freeBytes, pcm.readableBytes)
        guard count > 0 else { return }
        var slice = pcm.readSlice(length: count)!
        self.queued.discardReadBytes()
        self.queued.writeBuffer(&slice)
        self.queuedPosition += count
    }

    public mutating func openUtterance() {
        self.openUtterances += 1
    }

    public mutating func closeUtterance() {
        self.openUtterances = max(0, self.openUtterances - 1)
    }

    /// What goes out in the next slot.
    public enum Frame: Hashable, Sendable {
        /// 320 bytes of speech (the tail of an utterance is padded with silence).
        case speech(ByteBuffer)
        case silence
    }

    /// Takes the frame for the next 20 ms slot and counts it.
    public mutating func nextFrame(late: Bool) -> Frame {
        self.statistics.framesSent += 1
        if late { self.statistics.lateFrames += 1 }
        let available = self.queued.readableBytes
        if available >= Self.frameBytes {
            self.consumedPosition += Self.frameBytes
            self.statistics.speechFrames += 1
            return .speech(self.queued.readSlice(length: Self.frameBytes)!)
        }
        if available > 0 && self.openUtterances == 0 {
            // The end of an utterance: pad the last partial frame with silence.
            var frame = self.queued.readSlice(length: available)!
            frame.writeRepeatingByte(0, count: Self.frameBytes - available)
            self.consumedPosition += available
            self.statistics.speechFrames += 1
            return .speech(frame)
        }
        if self.openUtterances > 0 {
            // The producer is behind: keep any partial frame for the next slot.
            self.statistics.underruns += 1
        }
        self.statistics.silenceFrames += 1
        return .silence
    }

    /// Drops everything queued (barge-in) and returns the consumed position before the drop,
    /// i.e. the position of the first byte that will never be heard.
    @discardableResult
    public mutating func clear() -> Int {
        let heardUpTo = self.consumedPosition
        let dropped = self.queued.readableBytes
        self.queued.moveReaderIndex(forwardBy: dropped)
        self.consumedPosition += dropped
        self.statistics.clearedBytes += dropped
        return heardUpTo
    }

    /// Counts slots the pacer had to skip.
    public mutating func recordSkipped(_ slots: Int) {
        self.statistics.skippedSlots += slots
    }
}

/// The pacer's timetable: slot n is due at `start + n · 20 ms` on a monotonic clock, so
/// timing errors never accumulate. A tick that comes late sends the missed slots, at most
/// `maximumCatchUp` of them (60 ms), and skips the rest rather than burst.
public struct PacerSchedule: Sendable, Hashable {
    public static let period = TimeAmount.milliseconds(20)
    public let start: NIODeadline
    public let maximumCatchUp: Int
    public let lateTolerance: TimeAmount
    /// The next slot to send.
    public private(set) var nextSlot: Int64 = 0

    public init(start: NIODeadline, maximumCatchUp: Int = 3, lateTolerance: TimeAmount = .milliseconds(10)) {
        self.start = start
        self.maximumCatchUp = maximumCatchUp
        self.lateTolerance = lateTolerance
    }

    public var nextDeadline: NIODeadline {
        self.start + .nanoseconds(self.nextSlot * Self.period.nanoseconds)
    }

    /// The slots to fill at `now`: for each frame whether it is late, plus how many slots were skipped.
    public struct Tick: Hashable, Sendable {
        public var lateness: [Bool]
        public var skipped: Int
    }

    public mutating func tick(now: NIODeadline) -> Tick {
        // Nothing is due before the next slot (a timetable may start in the future).
        guard now >= self.nextDeadline else { return Tick(lateness: [], skipped: 0) }
        let elapsed = (now - self.start).nanoseconds
        let currentSlot = max(0, elapsed / Self.period.nanoseconds)
        var due = Int(currentSlot - self.nextSlot + 1)
        guard due > 0 else { return Tick(lateness: [], skipped: 0) }
        var skipped = 0
        if due > self.maximumCatchUp {
            skipped = due - self.maximumCatchUp
            self.nextSlot += Int64(skipped)
            due = self.maximumCatchUp
        }
        var lateness: [Bool] = []
        lateness.reserveCapacity(due)
        for _ in 0..<due {
            let slotTime = self.nextDeadline
            lateness.append(now - slotTime > self.lateTolerance)
            self.nextSlot += 1
        }
        return Tick(lateness: lateness, skipped: skipped)
    }
}
