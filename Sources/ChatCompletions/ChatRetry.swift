import Foundation

/// When a failed request is tried again, as the OpenAI clients do it: on 408, 409, 429 and 5xx
/// (or whenever the server sends `x-should-retry: true`), never on 401/403 or an exhausted quota;
/// after `retry-after-ms` or `retry-after` when the server gives 0–60 s, else after 0.5 s × 2ⁿ
/// (at most 8 s) less up to a quarter of jitter. A stream that has begun is never retried.
public struct ChatRetryPolicy: Sendable, Hashable {
    public var maxRetries: Int

    public init(maxRetries: Int = 2) {
        self.maxRetries = maxRetries
    }

    /// The wait before retry number `retry` (0 for the first), or nil when the answer is final.
    /// `jitter` is a random number in 0..<1.
    public func delay(status: Int, headers: [(String, String)], errorCode: String?, retry: Int, jitter: Double) -> Duration? {
        guard retry < self.maxRetries else { return nil }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1.trimmingCharacters(in: .whitespaces) }
        if status == 401 || status == 403 || errorCode == "insufficient_quota" { return nil }
        let retryable: Bool
        switch header("x-should-retry") {
        case "true": retryable = true
        case "false": retryable = false
        default: retryable = [408, 409, 429].contains(status) || status >= 500
        }
        guard retryable else { return nil }
        if let milliseconds = header("retry-after-ms").flatMap(Double.init), milliseconds >= 0, milliseconds <= 60_000 {
            return .milliseconds(milliseconds)
        }
        if let seconds = header("retry-after").flatMap(Double.init), seconds >= 0, seconds <= 60 {
            return .milliseconds(seconds * 1000)
        }
        let backoff = min(0.5 * Double(1 << min(retry, 8)), 8)
        return .milliseconds(backoff * (1 - 0.25 * jitter) * 1000)
    }
}
