import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import TestSupport
import Testing

@testable import AudioSocket

/// The pacer on a testing event loop: time is virtual, so cadence is checked exactly. The loop is
/// the thread-safe one: the producers run in tasks on other threads, as in a real call.
@Suite(.timeLimit(.minutes(1))) struct PacerTests {
    let loop = NIOAsyncTestingEventLoop()
    let channel: NIOAsyncTestingChannel
    let pacer: FramePacer
    let outbound: OutboundAudio

    init() {
        self.channel = NIOAsyncTestingChannel(loop: self.loop)
        self.pacer = FramePacer(eventLoop: self.loop)
        self.outbound = OutboundAudio(channel: self.channel, capacity: 960)
    }

    /// Reads the frames written since the last call: (kind, payload bytes).
    func written() async throws -> [(UInt8, [UInt8])] {
        var frames: [(UInt8, [UInt8])] = []
        while var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes > 0 {
                let kind = buffer.readInteger(as: UInt8.self)!
                let length = Int(buffer.readInteger(as: UInt16.self)!)
                frames.append((kind, buffer.readBytes(length: length)!))
            }
        }
        return frames
    }

    /// Starts speaking `samples` in a task and waits until it is parked on the pacer.
    func speak(_ samples: [Int16]) async throws -> Task<SpeakResult, Never> {
        let outbound = self.outbound
        let task = Task { await outbound.speak(samples) }
        try await eventually { outbound.hasWaiters }
        return task
    }

    /// Advances one slot once the producer is parked (or done).
    func step(done: NIOLockedValueBox<Bool>) async throws {
        let outbound = self.outbound
        try await eventually { outbound.hasWaiters || done.withLockedValue { $0 } }
        await self.loop.advanceTime(by: .milliseconds(20))
    }

    func register(_ outlet: OutboundAudio, on pacer: FramePacer? = nil) async throws {
        let pacer = pacer ?? self.pacer
        try await self.loop.executeInContext { pacer.register(outlet) }
    }

    @Test func tenSecondsGoOutAtExactlyOneFramePer20Milliseconds() async throws {
        try await self.register(self.outbound)
        #expect(try await self.written().count == 1)  // the first slot is served at once
        let tone = (0..<80_000).map { Int16(truncatingIfNeeded: ($0 % 40) * 100 + 1) }
        let task = try await self.speak(tone)
        let done = NIOLockedValueBox(false)
        Task {
            _ = await task.value
            done.withLockedValue { $0 = true }
        }
        var perSlot: [Int] = []
        var speech: [UInt8] = []
        for _ in 0..<505 {
            try await self.step(done: done)
            let frames = try await self.written()
            perSlot.append(frames.count)
            for (kind, payload) in frames {
                #expect(kind == 0x10)
                #expect(payload.count == 320)
                if payload.contains(where: { $0 != 0 }) { speech += payload }
            }
        }
        #expect(perSlot.allSatisfy { $0 == 1 })
        let result = await task.value
        #expect(result.completed)
        #expect(result.samplesPlayed == 80_000)
        #expect(speech.count == 160_000)
        var expected = ByteBuffer()
        expected.writePCMSamples(tone)
        #expect(speech == Array(expected.readableBytesView))
        let statistics = self.outbound.statistics
        #expect(statistics.underruns == 0)
        #expect(statistics.lateFrames == 0)
        #expect(statistics.framesSent == 506)
        #expect(statistics.speechFrames == 500)
    }

    @Test func speechHandedOverOnTheCallsOwnLoopGoesOutBeforePlayReturns() async throws {
        try await self.register(self.outbound)
        await self.loop.advanceTime(by: .milliseconds(7))
        _ = try await self.written()
        let firstFrame = NIOLockedValueBox<NIODeadline?>(nil)
        let utterance = self.outbound.open { at in firstFrame.withLockedValue { $0 = at } }
        // As a provider's socket on the call's loop hands its audio over: no task for the loop to run later.
        let outBeforeReturn = try await self.loop.executeInContext { () -> Bool in
            #expect(utterance.play([Int16](repeating: 700, count: 480)))
            return firstFrame.withLockedValue { $0 } != nil
        }
        #expect(outBeforeReturn)
        let early = try await self.written()
        #expect(early.count == 1 && early[0].1.contains(0xBC))
        let task = Task { await utterance.finish() }
        for _ in 0..<3 { await self.loop.advanceTime(by: .milliseconds(20)) }
        let result = await task.value
        #expect(result.completed && result.samplesPlayed == 480)
        #expect(self.outbound.statistics.speechFrames == 3)
    }

    @Test func speechOnASilentLineStartsAtOnceInPlaceOfTheNextSlot() async throws {
        try await self.register(self.outbound)
        for _ in 0..<3 { await self.loop.advanceTime(by: .milliseconds(7)) }  // between slots: 21 ms in
        _ = try await self.written()
        let firstFrame = NIOLockedValueBox<NIODeadline?>(nil)
        let outbound = self.outbound
        let utterance = outbound.open { at in firstFrame.withLockedValue { $0 = at } }
        #expect(utterance.play([Int16](repeating: 700, count: 1_600)))
        let task = Task { await utterance.finish() }
        try await eventually { outbound.hasWaiters }
        let queuedAt = self.loop.now
        await self.loop.run()
        // The first speech frame is out without waiting for the slot at 40 ms…
        let early = try await self.written()
        #expect(early.count == 1 && early[0].1.contains(0xBC))  // 700 = 0x02BC
        #expect(firstFrame.withLockedValue { $0 } == queuedAt)
        // …and that slot sends nothing, so the call still gets one frame per 20 ms.
        await self.loop.advanceTime(by: .milliseconds(19))
        #expect(try await self.written().isEmpty)
        var later: [Int] = []
        for _ in 0..<12 {
            await self.loop.advanceTime(by: .milliseconds(20))
            later.append(try await self.written().count)
        }
        #expect(later.allSatisfy { $0 == 1 })
        let result = await task.value
        #expect(result.completed && result.samplesPlayed == 1_600)
        #expect(self.outbound.statistics.speechFrames == 10)
    }

    @Test func callsAreSpreadOverStaggeredPhasesAndEachStillGetsOneFramePerSlot() async throws {
        let pacer = FramePacer(eventLoop: self.loop, phases: 4)  // slots at 0, 5, 10 and 15 ms
        let channels = (0..<8).map { _ in NIOAsyncTestingChannel(loop: self.loop) }
        let outlets = channels.map { OutboundAudio(channel: $0, capacity: 960) }
        for outlet in outlets { try await self.register(outlet, on: pacer) }
        func framesPerChannel() async throws -> [Int] {
            var counts: [Int] = []
            for channel in channels {
                var count = 0
                while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { count += buffer.readableBytes / 323 }
                counts.append(count)
            }
            return counts
        }
        #expect(try await framesPerChannel() == [1, 0, 0, 0, 0, 0, 0, 0])  // the idle clock starts with the first call
        var writersPerStep: [Int] = []
        var total = Array(repeating: 0, count: 8)
        for _ in 0..<40 {  // 200 ms in 5 ms steps
            await self.loop.advanceTime(by: .milliseconds(5))
            let frames = try await framesPerChannel()
            writersPerStep.append(frames.filter { $0 > 0 }.count)
            total = zip(total, frames).map(+)
        }
        // Two calls per phase: every 5 ms two calls write, never all eight at once…
        #expect(writersPerStep.allSatisfy { $0 == 2 }, "\(writersPerStep)")
        // …and over 200 ms each call got exactly its 10 frames.
        #expect(total == Array(repeating: 10, count: 8), "\(total)")
        let left = try await self.loop.executeInContext {
            for outlet in outlets { pacer.unregister(outlet) }
            return pacer.callCount
        }
        #expect(left == 0)
    }

    @Test func clearTakesEffectAtTheNextFrameAndReportsWhatWasHeard() async throws {
        try await self.register(self.outbound)
        _ = try await self.written()
        let task = try await self.speak([Int16](repeating: 1000, count: 8000))
        let done = NIOLockedValueBox(false)
        for _ in 0..<10 { try await self.step(done: done) }
        #expect(try await self.written().allSatisfy { $0.1.contains(0xE8) })  // 1000 = 0x03E8, little-endian
        self.outbound.clear()
        await self.loop.advanceTime(by: .milliseconds(20))
        let next = try await self.written()
        #expect(next.count == 1)
        #expect(next[0].1.allSatisfy { $0 == 0 })
        let result = await task.value
        #expect(!result.completed)
        #expect(result.samplesPlayed == 10 * 160)
        #expect(self.outbound.statistics.clearedBytes > 0)
    }

    @Test func anUtteranceTakesAudioAsItIsMadeWithoutWaitingAndHoldsBackAPartialFrame() async throws {
        try await self.register(self.outbound)
        _ = try await self.written()
        let samples = (1...1_350).map { Int16($0) }
        let utterance = self.outbound.open()
        #expect(utterance.play(Array(samples[0..<100])))
        await self.loop.run()
        #expect(try await self.written().isEmpty)  // less than a frame does not start the line
        // Past the queue's 60 ms: the rest waits behind it, the producer does not.
        #expect(utterance.play(Array(samples[100...])))
        await self.loop.run()
        var sent = try await self.written()
        #expect(sent.count == 1)  // started at once
        let outbound = self.outbound
        let finished = Task { await utterance.finish() }
        try await eventually { outbound.hasWaiters }
        for _ in 0..<10 {
            await self.loop.advanceTime(by: .milliseconds(20))
            sent += try await self.written()
        }
        let result = await finished.value
        #expect(result == SpeakResult(completed: true, samplesPlayed: 1_350, samplesGiven: 1_350))
        // Eight whole frames, then the last 70 samples padded with silence, then silence.
        var expected = ByteBuffer()
        expected.writePCMSamples(samples)
        expected.writeRepeatingByte(0, count: 9 * 320 - 2_700)
        #expect(Array(sent.prefix(9).flatMap(\.1)) == Array(expected.readableBytesView))
        #expect(sent.dropFirst(9).allSatisfy { $0.1.allSatisfy { $0 == 0 } })
        #expect(self.outbound.statistics.underruns == 0)
    }

    @Test func aClearedUtteranceRefusesMoreAudioAndReportsWhatWasHeard() async throws {
        try await self.register(self.outbound)
        _ = try await self.written()
        let utterance = self.outbound.open()
        #expect(utterance.play([Int16](repeating: 9, count: 1_600)))
        await self.loop.run()
        #expect(try await self.written().count == 1)
        self.outbound.clear()
        #expect(!utterance.play([1, 2, 3]))
        let result = await utterance.finish()
        #expect(result == SpeakResult(completed: false, samplesPlayed: 160, samplesGiven: 1_600))
        // Nothing of it is left to go out; a new utterance is heard.
        await self.loop.advanceTime(by: .milliseconds(20))
        #expect(try await self.written().allSatisfy { $0.1.allSatisfy { $0 == 0 } })
        let next = self.outbound.open()
        #expect(next.play([Int16](repeating: 7, count: 160)))
        await self.loop.advanceTime(by: .milliseconds(20))
        #expect(try await self.written().map { $0.1.contains(7) } == [true])
        #expect(await next.finish().completed)
    }

    @Test func hangupSendsTheHangupFrameAfterQueuedAudio() async throws {
        try await self.register(self.outbound)
        _ = try await self.written()
        let task = try await self.speak([Int16](repeating: 500, count: 480))
        let done = NIOLockedValueBox(false)
        Task {
            _ = await task.value
            done.withLockedValue { $0 = true }
        }
        for _ in 0..<3 { try await self.step(done: done) }
        #expect(await task.value.completed)
        let outbound = self.outbound
        let hungUp = Task { await outbound.hangup() }
        try await eventually { outbound.isHangingUp }
        await self.loop.advanceTime(by: .milliseconds(20))
        let frames = try await self.written()
        #expect(frames.map(\.0) == [0x10, 0x10, 0x10, 0x00])
        await hungUp.value
        #expect(self.outbound.isClosed)
        let pacer = self.pacer
        #expect(try await self.loop.executeInContext { pacer.callCount } == 0)
    }
}
