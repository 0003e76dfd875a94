import Foundation

/// Frame-by-frame voice activity from energy, against a noise floor that adapts to the line.
///
/// The floor follows quiet frames down at once and creeps up slowly, so a noisy line raises
/// it and speech does not. A frame is voiced when it is `margin` dB above the floor and
/// above an absolute minimum; speech starts after `onsetFrames` voiced frames in a row.
public struct VoiceActivityDetector: Sendable, Hashable {
    public struct Configuration: Sendable, Hashable {
        /// How far above the noise floor a voiced frame is, in dB.
        public var margin: Double = 12
        /// Frames quieter than this (dBFS) are never speech.
        public var minimumLevel: Double = -45
        /// Voiced frames in a row before speech starts (3 × 20 ms).
        public var onsetFrames: Int = 3
        /// How fast the floor rises towards louder frames, per frame (0–1).
        public var floorRise: Double = 0.005

        public init() {}
    }

    public let configuration: Configuration
    /// The current noise floor estimate, dBFS.
    public private(set) var noiseFloor: Double = -70
    /// Whether speech is going on (after onset, until the first unvoiced frame).
    public private(set) var inSpeech = false
    private var voicedRun = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The frame's level in dBFS (-100 for digital silence).
    public static func level(of samples: some Collection<Int16>) -> Double {
        guard !samples.isEmpty else { return -100 }
        var sum = 0.0
        for sample in samples { sum += Double(sample) * Double(sample) }
        let rms = (sum / Double(samples.count)).squareRoot()
        return rms < 1 ? -100 : 20 * log10(rms / 32_768)
    }

    public enum Decision: Sendable, Hashable {
        case silence
        /// Voiced, but not yet long enough to count as speech.
        case voiced
        /// The frame that completed the onset.
        case speechStarted
        case speech
    }

    /// Classifies the next 20 ms frame by its level.
    public mutating func process(level: Double) -> Decision {
        let threshold = max(self.noiseFloor + self.configuration.margin, self.configuration.minimumLevel)
        let voiced = level > threshold
        if level < self.noiseFloor {
            self.noiseFloor = level
        } else if !voiced {
            self.noiseFloor += (level - self.noiseFloor) * self.configuration.floorRise * 10
        } else {
            self.noiseFloor += (level - self.noiseFloor) * self.configuration.floorRise
        }
        guard voiced else {
            self.voicedRun = 0
            self.inSpeech = false
            return .silence
        }
        self.voicedRun += 1
        if self.inSpeech { return .speech }
        if self.voicedRun >= self.configuration.onsetFrames {
            self.inSpeech = true
            return .speechStarted
        }
        return .voiced
    }
}
