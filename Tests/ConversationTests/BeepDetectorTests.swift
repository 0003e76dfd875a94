import Foundation
import PBXSimulator
import Speech
import Testing

@testable import Conversation

@Suite struct BeepDetectorTests {
    func feed(_ samples: [Int16], into detector: inout BeepDetector, frame: Int = 160) -> Int? {
        var index = 0
        while index < samples.count {
            let chunk = Array(samples[index..<min(index + frame, samples.count)])
            if detector.feed(chunk) { return index + chunk.count }
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
        let again = detector.feed(tone)
        #expect(!again, "reported once")
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
