/// Exponential backoff with jitter: attempt n waits a random time between half and all of
/// min(maximum, initial · 2ⁿ), so many clients cut off at once do not reconnect in step.
public struct ReconnectBackoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait before reconnect attempt `attempt` (0-based); `unitRandom` is uniform in 0...1.
    public func delay(attempt: Int, unitRandom: Double) -> Duration {
        let exponent = min(attempt, 30)
        let ceiling = min(self.maximum, self.initial * (1 << exponent))
        let fraction = 0.5 + 0.5 * min(max(unitRandom, 0), 1)
        return ceiling * fraction
    }
}
