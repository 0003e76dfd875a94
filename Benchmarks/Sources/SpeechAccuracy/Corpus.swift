import Foundation
import Speech

/// The recognition corpus: what callers say to an outbound sales call, labelled by what the
/// agent must do with it, spoken by voices the recogniser was not tuned to and taken over a
/// telephone line (8 kHz, 300–3,400 Hz, G.711 µ-law, a little noise). Deterministic: the same
/// run gives the same audio. `SpeechAccuracy --write-corpus DIR` writes it as WAV files.
enum Corpus {
    enum Intent: String, CaseIterable {
        case optOut = "opt-out"
        case callback
        case yes
        case no
        case question
        case wrongPerson = "wrong person"
    }

    struct Line {
        var text: String
        var intent: Intent
        /// Listed verbatim in the policy's phrases (or the template's); false: held out.
        var listed: Bool
    }

    static let lines: [Line] = [
        // Opt-outs: a missed one is the violation.
        .init(text: "please remove me from your list", intent: .optOut, listed: true),
        .init(text: "stop calling me", intent: .optOut, listed: true),
        .init(text: "take me off your list", intent: .optOut, listed: true),
        .init(text: "do not call this number again", intent: .optOut, listed: true),
        .init(text: "please don't call me anymore", intent: .optOut, listed: false),
        .init(text: "put me on your do not call list", intent: .optOut, listed: false),
        .init(text: "i don't want any more calls", intent: .optOut, listed: false),
        .init(text: "never call me again", intent: .optOut, listed: false),
        // Callbacks.
        .init(text: "call me back tomorrow morning", intent: .callback, listed: true),
        .init(text: "i'm busy right now", intent: .callback, listed: true),
        .init(text: "can you call me later", intent: .callback, listed: true),
        .init(text: "i'm driving can you call back", intent: .callback, listed: false),
        .init(text: "can you call me next week", intent: .callback, listed: false),
        .init(text: "call me back at five", intent: .callback, listed: false),
        .init(text: "this isn't a good time", intent: .callback, listed: false),
        // Yes and no.
        .init(text: "yes that sounds good", intent: .yes, listed: true),
        .init(text: "sure go ahead", intent: .yes, listed: true),
        .init(text: "that sounds great", intent: .yes, listed: false),
        .init(text: "yes please book it", intent: .yes, listed: false),
        .init(text: "i'm not interested", intent: .no, listed: true),
        .init(text: "no thank you", intent: .no, listed: true),
        .init(text: "we're not interested thanks", intent: .no, listed: false),
        // Questions and objections.
        .init(text: "who is this", intent: .question, listed: true),
        .init(text: "is this a robot", intent: .question, listed: true),
        .init(text: "how much does it cost", intent: .question, listed: true),
        .init(text: "it's too expensive", intent: .question, listed: true),
        .init(text: "i already have solar panels", intent: .question, listed: true),
        .init(text: "i rent my home", intent: .question, listed: true),
        .init(text: "i want to speak to a real person", intent: .question, listed: true),
        .init(text: "what company are you calling from", intent: .question, listed: true),
        .init(text: "what is this about", intent: .question, listed: false),
        .init(text: "how long does the visit take", intent: .question, listed: false),
        .init(text: "my landlord handles that", intent: .question, listed: false),
        .init(text: "i can't afford it", intent: .question, listed: false),
        // Wrong person.
        .init(text: "wrong number", intent: .wrongPerson, listed: true),
        .init(text: "you have the wrong number", intent: .wrongPerson, listed: false),
    ]

    /// A caller's voice: a synthesiser and the words per minute it speaks at.
    struct Voice {
        var name: String
        var synthesizer: any SpeechSynthesizer
    }

    /// flite kal16 is the stand-in's callers' own voice (what the figures used to be measured
    /// on); every other voice is one the recogniser was never tuned to.
    static let voices: [Voice] = [
        .init(name: "flite kal16 (the stand-in's callers)", synthesizer: FliteSynthesizer(voice: .kal16)),
        .init(name: "flite kal (8 kHz diphones)", synthesizer: FliteSynthesizer(voice: .kal)),
        .init(name: "flite slt (female)", synthesizer: FliteSynthesizer(voice: .slt)),
        .init(name: "flite rms", synthesizer: FliteSynthesizer(voice: .rms)),
        .init(name: "flite awb (Scottish)", synthesizer: FliteSynthesizer(voice: .awb)),
        .init(name: "espeak-ng en-us, 165 wpm", synthesizer: EspeakSynthesizer(voiceName: "en-us", wordsPerMinute: 165)),
        .init(name: "espeak-ng en-us, 220 wpm (fast)", synthesizer: EspeakSynthesizer(voiceName: "en-us", wordsPerMinute: 220)),
        .init(name: "espeak-ng en-us+f3 (female), 140 wpm", synthesizer: EspeakSynthesizer(voiceName: "en-us+f3", wordsPerMinute: 140, pitch: 70)),
        .init(name: "espeak-ng en-gb-x-rp, 175 wpm", synthesizer: EspeakSynthesizer(voiceName: "en-gb-x-rp", wordsPerMinute: 175, pitch: 40)),
    ]

    /// One line in one voice, as the engine gets it from a telephone line.
    static func render(_ text: String, voice: Voice, seed: UInt64) async throws -> [Int16] {
        var samples: [Int16] = []
        for try await chunk in voice.synthesizer.synthesize(text) { samples += chunk }
        return Telephone.line(samples, seed: seed)
    }
}

/// What a telephone line does to 8 kHz speech: band-limits it to 300–3,400 Hz, codes it as
/// G.711 µ-law and back, and adds hiss 30 dB below the speech's level.
enum Telephone {
    static func line(_ samples: [Int16], seed: UInt64, snr: Double = 30) -> [Int16] {
        var high = Biquad.highPass(300)
        var low = Biquad.lowPass(3_400)
        let filtered = samples.map { low.process(high.process(Double($0))) }
        let power = filtered.reduce(0) { $0 + $1 * $1 } / Double(max(1, filtered.count))
        let noiseAmplitude = sqrt(power / pow(10, snr / 10)) * sqrt(3)  // uniform noise: variance a²/3
        var random = SplitMix(state: seed)
        return filtered.map { value in
            let noisy = value + noiseAmplitude * (2 * random.nextUnit() - 1)
            return MuLaw.decode(MuLaw.encode(Int16(clamping: Int(noisy.rounded()))))
        }
    }

    /// A second-order filter (RBJ's cookbook), at 8 kHz, Q 0.707.
    struct Biquad {
        var b0, b1, b2, a1, a2: Double
        var x1 = 0.0, x2 = 0.0, y1 = 0.0, y2 = 0.0

        static func highPass(_ frequency: Double) -> Biquad {
            let (cosine, alpha) = Self.prewarp(frequency)
            let a0 = 1 + alpha
            return Biquad(b0: (1 + cosine) / 2 / a0, b1: -(1 + cosine) / a0, b2: (1 + cosine) / 2 / a0, a1: -2 * cosine / a0, a2: (1 - alpha) / a0)
        }

        static func lowPass(_ frequency: Double) -> Biquad {
            let (cosine, alpha) = Self.prewarp(frequency)
            let a0 = 1 + alpha
            return Biquad(b0: (1 - cosine) / 2 / a0, b1: (1 - cosine) / a0, b2: (1 - cosine) / 2 / a0, a1: -2 * cosine / a0, a2: (1 - alpha) / a0)
        }

        static func prewarp(_ frequency: Double) -> (Double, Double) {
            let omega = 2 * Double.pi * frequency / 8_000
            return (cos(omega), sin(omega) / (2 * 0.707))
        }

        mutating func process(_ x: Double) -> Double {
            let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2 - self.a1 * self.y1 - self.a2 * self.y2
            (self.x2, self.x1, self.y2, self.y1) = (self.x1, x, self.y1, y)
            return y
        }
    }

    /// G.711 µ-law (ITU-T G.711, with the usual bias of 0x84).
    enum MuLaw {
        static func encode(_ sample: Int16) -> UInt8 {
            let sign: Int = sample < 0 ? 0x80 : 0
            var magnitude = min(Int(sample.magnitude), 32_635) + 0x84
            var exponent = 7
            var mask = 0x4000
            while exponent > 0 && magnitude & mask == 0 {
                exponent -= 1
                mask >>= 1
            }
            magnitude >>= exponent + 3
            return ~UInt8(sign | (exponent << 4) | (magnitude & 0x0F))
        }

        static func decode(_ byte: UInt8) -> Int16 {
            let value = Int(~byte)
            let magnitude = (((value & 0x0F) << 3) + 0x84) << ((value & 0x70) >> 4)
            return Int16(value & 0x80 != 0 ? 0x84 - magnitude : magnitude - 0x84)
        }
    }

    /// A small, seeded generator: the same corpus on every run.
    struct SplitMix {
        var state: UInt64

        mutating func nextUnit() -> Double {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
    }
}
