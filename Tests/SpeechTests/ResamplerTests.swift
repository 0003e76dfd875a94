import Foundation
import Testing

@testable import Speech

@Suite struct ResamplerTests {
    static func tone(frequency: Double, rate: Int, seconds: Double, amplitude: Double = 10_000) -> [Int16] {
        (0..<Int(Double(rate) * seconds)).map { Int16(amplitude * sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
    }

    /// Root mean square of the middle of a signal (away from the filter's start-up).
    static func rms(_ samples: [Int16]) -> Double {
        let middle = samples[samples.count / 4..<samples.count * 3 / 4]
        return (middle.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(middle.count)).squareRoot()
    }

    @Test(arguments: [(22_050, 8_000), (8_000, 16_000), (16_000, 8_000), (24_000, 8_000)])
    func chunkedInputGivesExactlyTheSamplesOfWholeInput(rates: (Int, Int)) {
        let input = Self.tone(frequency: 440, rate: rates.0, seconds: 1)
        var whole = Resampler(from: rates.0, to: rates.1)
        let expected = whole.process(input)
        #expect(expected.count == Int((Double(input.count) * Double(rates.1) / Double(rates.0)).rounded(.up)))

        var chunked = Resampler(from: rates.0, to: rates.1)
        var output: [Int16] = []
        var offset = 0
        var size = 1
        while offset < input.count {
            let end = min(input.count, offset + size)
            #expect(chunked.outputCount(forInput: end - offset) >= 0)
            output += chunked.process(input[offset..<end])
            offset = end
            size = size * 3 % 1_001 + 1  // odd sizes, 1 to 1,001 samples
        }
        #expect(output == expected)
    }

    @Test func keepsTheVoiceBandAndRemovesWhatWouldAlias() {
        var voice = Resampler(from: 22_050, to: 8_000)
        let passed = Self.rms(voice.process(Self.tone(frequency: 1_000, rate: 22_050, seconds: 1)))
        #expect(abs(passed - 10_000 / 2.0.squareRoot()) < 200)  // within about 0.3 dB

        var alias = Resampler(from: 22_050, to: 8_000)
        let folded = Self.rms(alias.process(Self.tone(frequency: 6_000, rate: 22_050, seconds: 1)))
        #expect(folded < 10_000 / 2.0.squareRoot() / 300)  // 6 kHz would fold to 2 kHz: at least 50 dB down
    }

    @Test func upsamplingKeepsTheToneAtItsPitch() {
        var resampler = Resampler(from: 8_000, to: 16_000)
        let output = resampler.process(Self.tone(frequency: 500, rate: 8_000, seconds: 1))
        // Rising zero crossings in the middle half second: 250 at any rate.
        var crossings = 0
        for index in 4_001..<12_000 where output[index - 1] < 0 && output[index] >= 0 { crossings += 1 }
        #expect((249...251).contains(crossings))
    }
}
