import Foundation

/// Hears an answering machine's record tone: one steady, dominant tone anywhere in about
/// 400–2,000 Hz lasting 150 ms or more (machines use 440, 850, 1,000, 1,400 Hz and others, not
/// only 1 kHz). Speech never holds one frequency that long with so little else in it.
///
/// Fed 8 kHz frames of any size; looks at 20 ms blocks. Per block: the level is above -35 dBFS,
/// the zero crossings (interpolated between samples) give the frequency, and the Goertzel power at that frequency holds
/// most of the block's energy. `minimumBlocks` such blocks in a row, each within 4% of the
/// first, are a beep, reported once; the first block after it without that tone is its end
/// (where a message left on the machine starts), reported once too.
public struct BeepDetector: Sendable {
    public enum Event: Sendable, Hashable {
        /// The tone has held for `minimumBlocks`.
        case tone
        /// The tone stopped.
        case toneEnded
    }

    public var sampleRate = 8000
    public var range: ClosedRange<Double> = 400...2000
    /// 8 blocks of 20 ms: 160 ms.
    public var minimumBlocks = 8
    /// The share of the block's energy the tone must hold.
    public var tonality = 0.6

    private var pending: [Int16] = []
    private var run = 0
    private var runFrequency = 0.0
    public private(set) var heard = false
    public private(set) var ended = false

    public init() {}

    /// `.tone` on the block that completes a beep, `.toneEnded` on the first block after it
    /// that no longer holds the tone; each once, and nothing after.
    public mutating func feed(_ samples: [Int16]) -> Event? {
        guard !self.ended else { return nil }
        self.pending += samples
        let block = self.sampleRate / 50
        while self.pending.count >= block {
            let frame = Array(self.pending.prefix(block))
            self.pending.removeFirst(block)
            let frequency = Self.tone(in: frame, sampleRate: self.sampleRate, range: self.range, tonality: self.tonality)
            let sameTone = frequency.map { self.run > 0 && abs($0 - self.runFrequency) <= self.runFrequency * 0.04 } ?? false
            if self.heard {
                guard !sameTone else { continue }
                self.ended = true
                self.pending = []
                return .toneEnded
            }
            if let frequency {
                if sameTone {
                    self.run += 1
                } else {
                    self.run = 1
                    self.runFrequency = frequency
                }
                if self.run >= self.minimumBlocks {
                    self.heard = true
                    return .tone
                }
            } else {
                self.run = 0
            }
        }
        return nil
    }

    /// The block's tone frequency, when one tone in `range` dominates it.
    static func tone(in frame: [Int16], sampleRate: Int, range: ClosedRange<Double>, tonality: Double) -> Double? {
        guard VoiceActivityDetector.level(of: frame) > -35 else { return nil }
        // Zero crossings, placed between samples by interpolation: from the first to the last,
        // (count - 1) half periods.
        var crossings = 0
        var first = 0.0
        var last = 0.0
        for index in 1..<frame.count where (frame[index - 1] < 0) != (frame[index] < 0) {
            let a = Double(frame[index - 1])
            let b = Double(frame[index])
            let at = Double(index - 1) + a / (a - b)
            if crossings == 0 { first = at }
            last = at
            crossings += 1
        }
        guard crossings >= 3, last > first else { return nil }
        let frequency = Double(crossings - 1) * Double(sampleRate) / (2 * (last - first))
        guard range.contains(frequency) else { return nil }
        // Goertzel at the frequency, against the block's energy (a pure tone holds N/2 of it).
        let coefficient = 2 * cos(2 * Double.pi * frequency / Double(sampleRate))
        var (previous, beforePrevious, energy) = (0.0, 0.0, 0.0)
        for sample in frame {
            let value = Double(sample)
            energy += value * value
            let current = value + coefficient * previous - beforePrevious
            beforePrevious = previous
            previous = current
        }
        let power = previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious
        guard energy > 0 else { return nil }
        return power / (energy * Double(frame.count) / 2) >= tonality ? frequency : nil
    }
}
