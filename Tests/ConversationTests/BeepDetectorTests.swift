import Foundation
import PBXSimulator
import Speech
import Testing

@testable import Conversation

@Suite struct BeepDetectorTests {
    /// Where (in samples fed) the detector first reported `event`.
    func feed(_ samples: [Int16], into detector: inout BeepDetector, frame: Int = 160, until event: BeepDetector.Event = .tone) -> Int? {
        var index = 0
        while index < samples.count {
            let chunk = Array(samples[index..<min(index + frame, samples.count)])
            if detector.feed(chunk) == event { return index + chunk.count }
            index += frame
        }
        return nil
    }

    @Test(arguments: [440.0, 850, 1000, 1400, 1950])
    func aRecordToneAnywhereInTheBandIsHeardOnceAfterAbout160Milliseconds(frequency: Double) {
        var detector = BeepDetector()
        let tone = TestAudio.tone(frequency: frequency, duration: .milliseconds(400), amplitude: 6000)
        let at = self.feed(tone, into: &detector)
        #expect(at != nil && at! <= 8 * 160 + 160, "heard at \(String(describing: at)) samples")
        let again = self.feed(tone, into: &detector)
        #expect(again == nil, "reported once")
    }

    @Test func theToneEndIsWhereTheFirstBlockWithoutItIsAndIsReportedOnce() {
        var detector = BeepDetector()
        let tone = TestAudio.tone(frequency: 1000, duration: .milliseconds(600), amplitude: 6000)
        let after = [Int16](repeating: 0, count: 4_000)
        let ended = self.feed(tone + after, into: &detector, until: .toneEnded)
        // 4,800 samples of tone: the block after them ends it.
        #expect(ended == 4_800 + 160, "ended at \(String(describing: ended))")
        #expect(self.feed(tone + after, into: &detector) == nil && detector.feed(after) == nil)
        // A different tone right after the first ends it too.
        var changed = BeepDetector()
        let ends = self.feed(tone + TestAudio.tone(frequency: 1_400, duration: .milliseconds(300), amplitude: 6000), into: &changed, until: .toneEnded)
        #expect(ends == 4_800 + 160)
    }

    @Test func aToneTooShortOrOutsideTheBandOrTooQuietIsNot() {
        var short = BeepDetector()
        #expect(self.feed(TestAudio.tone(frequency: 1000, duration: .milliseconds(100), amplitude: 6000), into: &short) == nil)
        var low = BeepDetector()
        #expect(self.feed(TestAudio.tone(frequency: 200, duration: .milliseconds(500), amplitude: 6000), into: &low) == nil)
        var quiet = BeepDetector()
        #expect(self.feed(TestAudio.tone(frequency: 1000, duration: .milliseconds(500), amplitude: 20), into: &quiet) == nil)
    }

    @Test func speechIsNotABeep() async throws {
        var detector = BeepDetector()
        let lines = [
            "Hi, you have reached the Miller family. We cannot take your call right now.",
            "Oooh, well, hmm, I suppose so. Yes, I have a minute, go on.",
        ]
        for line in lines {
            var samples: [Int16] = []
            for try await piece in EspeakSynthesizer().synthesize(line) { samples += piece }
            for try await piece in FliteSynthesizer().synthesize(line) { samples += piece }
            #expect(self.feed(samples, into: &detector, frame: 320) == nil, "\(line)")
        }
    }
}
