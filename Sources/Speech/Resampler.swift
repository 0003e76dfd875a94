import Foundation

/// A stateful polyphase resampler for 16-bit mono PCM between integer rates.
///
/// The rate change is reduced to `up/down`; each output sample is a windowed-sinc
/// filter over the input, picked from `up` precomputed phases. Positions are kept as
/// exact integers across calls, so feeding a signal in chunks of any size gives the
/// same samples as feeding it at once: no drift, no clicks between chunks, and after
/// `n` input samples exactly `ceil(n * up / down)` output samples have come out.
public struct Resampler: Sendable {
    public let inputRate: Int
    public let outputRate: Int
    let up: Int
    let down: Int
    /// Taps per phase.
    let taps: Int
    /// `coefficients[phase * taps + k]` weighs input sample `i - k` for an output whose phase is `phase`.
    let coefficients: [Float]
    /// The last `taps - 1` input samples, oldest first, then room for new input.
    private var history: [Float]
    /// Input samples consumed so far.
    private var consumed: Int64 = 0
    /// Output samples produced so far.
    private var produced: Int64 = 0

    /// - Parameter taps: filter length per phase when upsampling; downsampling by a factor
    ///   `r` uses `taps × ⌈r⌉`, so the transition band stays as narrow at the output rate.
    public init(from inputRate: Int, to outputRate: Int, taps: Int = 32) {
        precondition(inputRate > 0 && outputRate > 0 && taps > 1)
        let divisor = Self.gcd(inputRate, outputRate)
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.up = outputRate / divisor
        self.down = inputRate / divisor
        let taps = taps * Int((Double(self.down) / Double(self.up)).rounded(.up))
        self.taps = taps
        self.coefficients = Self.design(up: self.up, down: self.down, taps: taps)
        self.history = [Float](repeating: 0, count: taps - 1)
    }

    /// The number of output samples that `count` more input samples will produce.
    public func outputCount(forInput count: Int) -> Int {
        Int(Self.ceilDiv((self.consumed + Int64(count)) * Int64(self.up), Int64(self.down)) - self.produced)
    }

    /// Resamples the next piece of the signal.
    public mutating func process(_ input: some Collection<Int16>) -> [Int16] {
        if self.up == self.down {
            self.consumed += Int64(input.count)
            self.produced += Int64(input.count)
            return Array(input)
        }
        let base = self.consumed - Int64(self.taps - 1)  // absolute index of history[0]
        self.history.reserveCapacity(self.history.count + input.count)
        for sample in input { self.history.append(Float(sample)) }
        self.consumed += Int64(input.count)

        let total = Self.ceilDiv(self.consumed * Int64(self.up), Int64(self.down))
        var output = [Int16]()
        output.reserveCapacity(Int(total - self.produced))
        self.history.withUnsafeBufferPointer { samples in
            self.coefficients.withUnsafeBufferPointer { filter in
                while self.produced < total {
                    let position = self.produced * Int64(self.down)
                    let newest = Int(position / Int64(self.up) - base)  // index in history of input i_n
                    let phase = Int(position % Int64(self.up))
                    var sum: Float = 0
                    let row = phase * self.taps
                    for k in 0..<self.taps {
                        sum += filter[row + k] * samples[newest - k]
                    }
                    output.append(Int16(clamping: Int(sum.rounded())))
                    self.produced += 1
                }
            }
        }
        self.history.removeFirst(self.history.count - (self.taps - 1))
        return output
    }

    // MARK: design

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    static func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 { (a + b - 1) / b }

    /// A Blackman-windowed sinc low-pass at 0.9 × the lower Nyquist rate, split into `up` phases, gain `up`.
    static func design(up: Int, down: Int, taps: Int) -> [Float] {
        let length = up * taps
        let cutoff = 0.9 * 0.5 / Double(max(up, down))  // in cycles per upsampled sample
        let centre = Double(length - 1) / 2
        var prototype = [Double](repeating: 0, count: length)
        for m in 0..<length {
            let t = Double(m) - centre
            let sinc = t == 0 ? 2 * cutoff : sin(2 * Double.pi * cutoff * t) / (Double.pi * t)
            let window = 0.42 - 0.5 * cos(2 * Double.pi * Double(m) / Double(length - 1))
                + 0.08 * cos(4 * Double.pi * Double(m) / Double(length - 1))
            prototype[m] = sinc * window
        }
        // Normalise each phase to unity DC gain so no phase is louder than another.
        var coefficients = [Float](repeating: 0, count: length)
        for phase in 0..<up {
            var sum = 0.0
            for k in 0..<taps { sum += prototype[k * up + phase] }
            for k in 0..<taps { coefficients[phase * taps + k] = Float(prototype[k * up + phase] / sum) }
        }
        return coefficients
    }
}
