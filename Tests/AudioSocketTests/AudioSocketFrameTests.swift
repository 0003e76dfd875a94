import Foundation
import NIOCore
import NIOTestUtils
import Testing

@testable import AudioSocket

@Suite struct AudioSocketFrameTests {
    static let uuid = UUID(uuidString: "40325ec2-5efd-4bd3-805f-53576e581d13")!

    func bytes(_ frames: [AudioSocketFrame]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { frame.encode(into: &buffer) }
        return buffer
    }

    @Test func uuidFrameMatchesTheProtocolExample() {
        // PROTOCOLS.md §2.4: 01 00 10 40 32 5e c2 5e fd 4b d3 80 5f 53 57 6e 58 1d 13
        let expected: [UInt8] = [0x01, 0x00, 0x10, 0x40, 0x32, 0x5E, 0xC2, 0x5E, 0xFD, 0x4B, 0xD3, 0x80, 0x5F, 0x53, 0x57, 0x6E, 0x58, 0x1D, 0x13]
        #expect(Array(self.bytes([.uuid(Self.uuid)]).readableBytesView) == expected)
        #expect(Array(self.bytes([.dtmf("5")]).readableBytesView) == [0x03, 0x00, 0x01, 0x35])
        #expect(Array(self.bytes([.hangup]).readableBytesView) == [0x00, 0x00, 0x00])
    }

    @Test func decodesEveryKindWhateverTheSplit() throws {
        var payload = ByteBuffer()
        payload.writePCMSamples([1, -1, 300, -300] + [Int16](repeating: 7, count: 156))
        let frames: [AudioSocketFrame] = [
            .uuid(Self.uuid), .audio(.slin8, payload), .dtmf("#"), .audio(.slin16, payload), .audio(.slin192, payload),
            .error(0x01), .error(nil), .hangup,
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(self.bytes(frames), frames)]) { AudioSocketFrameDecoder() }
    }

    @Test func decodesTheLargestFrame() throws {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(1, count: 65534)
        var buffer = self.bytes([.audio(.slin8, payload)])
        var decoder = AudioSocketFrameDecoder()
        #expect(try decoder.decode(buffer: &buffer) == .audio(.slin8, payload))
    }

    @Test(arguments: [
        ([0x02, 0x00, 0x00], AudioSocketError.unknownKind(0x02)),
        ([0x42, 0xFF, 0xFF], AudioSocketError.unknownKind(0x42)),
        ([0x10, 0x00, 0x00], AudioSocketError.emptyAudio),
        ([0x10, 0x00, 0x03, 1, 2, 3], AudioSocketError.oddAudioLength),
        ([0x01, 0x00, 0x02, 1, 2], AudioSocketError.badLength(kind: 0x01)),
        ([0x03, 0x00, 0x01, 0x78], AudioSocketError.badDTMF),
    ] as [([UInt8], AudioSocketError)])
    func refusesMalformedFrames(bytes: [UInt8], error: AudioSocketError) {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = AudioSocketFrameDecoder()
        #expect(throws: error) { _ = try decoder.decode(buffer: &buffer) }
    }

    @Test func unknownKindsAreRefusedBeforeTheirPayloadArrives() {
        var buffer = ByteBuffer(bytes: [0x05, 0xFF, 0xFF])
        var decoder = AudioSocketFrameDecoder()
        #expect(throws: AudioSocketError.unknownKind(0x05)) { _ = try decoder.decode(buffer: &buffer) }
    }

    @Test func samplesAreLittleEndian() {
        var buffer = ByteBuffer()
        buffer.writePCMSamples([0x0102, -2])
        #expect(Array(buffer.readableBytesView) == [0x02, 0x01, 0xFE, 0xFF])
        #expect(buffer.pcmSamples() == [0x0102, -2])
    }
}

@Suite struct OutboundAudioQueueTests {
    func pcm(_ bytes: Int, value: UInt8 = 9) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRepeatingByte(value, count: bytes)
        return buffer
    }

    @Test func holdsAtMostSixtyMillisecondsAhead() {
        var queue = OutboundAudioQueue()
        var input = self.pcm(2000)
        queue.enqueue(&input)
        #expect(queue.queuedBytes == 960)
        #expect(input.readableBytes == 1040)
    }

    @Test func sendsSpeechFramesThenSilence() {
        var queue = OutboundAudioQueue()
        var input = self.pcm(400)
        queue.enqueue(&input)
        guard case .speech(let first) = queue.nextFrame(late: false) else {
            Issue.record("expected speech")
            return
        }
        #expect(first.readableBytes == 320)
        // The 80-byte tail of a finished utterance is padded with silence.
        guard case .speech(let tail) = queue.nextFrame(late: false) else {
            Issue.record("expected the padded tail")
            return
        }
        #expect(tail.readableBytes == 320)
        #expect(tail.getBytes(at: tail.readerIndex, length: 80) == [UInt8](repeating: 9, count: 80))
        #expect(tail.getBytes(at: tail.readerIndex + 80, length: 240) == [UInt8](repeating: 0, count: 240))
        #expect(queue.nextFrame(late: true) == .silence)
        #expect(queue.statistics.framesSent == 3)
        #expect(queue.statistics.speechFrames == 2)
        #expect(queue.statistics.lateFrames == 1)
        #expect(queue.statistics.underruns == 0)
    }

    @Test func aStarvedUtteranceCountsUnderrunsAndKeepsItsPartialFrame() {
        var queue = OutboundAudioQueue()
        queue.openUtterance()
        var input = self.pcm(100)
        queue.enqueue(&input)
        #expect(queue.nextFrame(late: false) == .silence)
        #expect(queue.statistics.underruns == 1)
        #expect(queue.queuedBytes == 100)
        queue.closeUtterance()
        guard case .speech = queue.nextFrame(late: false) else {
            Issue.record("expected the tail once the utterance ended")
            return
        }
    }

    @Test func clearDropsEverythingAndReportsWhatWasHeard() {
        var queue = OutboundAudioQueue()
        var input = self.pcm(960)
        queue.enqueue(&input)
        _ = queue.nextFrame(late: false)
        #expect(queue.clear() == 320)
        #expect(queue.queuedBytes == 0)
        #expect(queue.consumedPosition == 960)
        #expect(queue.statistics.clearedBytes == 640)
        #expect(queue.nextFrame(late: false) == .silence)
    }
}

@Suite struct PacerScheduleTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func oneFramePerSlotOnTime() {
        var schedule = PacerSchedule(start: self.start)
        #expect(schedule.tick(now: self.start) == .init(lateness: [false], skipped: 0))
        #expect(schedule.nextDeadline == self.start + .milliseconds(20))
        #expect(schedule.tick(now: self.start + .milliseconds(20)) == .init(lateness: [false], skipped: 0))
        // Woken early: nothing due.
        #expect(schedule.tick(now: self.start + .milliseconds(39)) == .init(lateness: [], skipped: 0))
    }

    @Test func aLateTickCatchesUpAtMostSixtyMilliseconds() {
        var schedule = PacerSchedule(start: self.start)
        _ = schedule.tick(now: self.start)
        // 45 ms late for slot 1: slots 1 and 2 are due, slot 1 is late.
        #expect(schedule.tick(now: self.start + .milliseconds(65)) == .init(lateness: [true, true, false], skipped: 0))
        // A 200 ms stall: three frames go out, the rest of the slots are skipped.
        let tick = schedule.tick(now: self.start + .milliseconds(265))
        #expect(tick.lateness.count == 3)
        #expect(tick.skipped == 7)
        #expect(schedule.nextDeadline == self.start + .milliseconds(280))
    }
}
