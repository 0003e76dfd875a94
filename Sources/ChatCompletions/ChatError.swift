import StreamingHTTP

/// What can go wrong with a chat-completions call. Descriptions carry the server's status, type
/// and code, never the API key, the prompt or the reply.
public enum ChatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key was refused (401/403).
    case authentication(status: Int, code: String?)
    /// The account has no quota left (429 `insufficient_quota`): retrying will not help.
    case insufficientQuota
    /// Any other error status, after the retries it deserved.
    case status(Int, type: String?, code: String?, message: String?)
    /// An error event inside a 200 stream.
    case streamError(type: String?, code: String?, message: String?)
    /// No content or tool call arrived within the first-token time.
    case firstTokenTimeout(Duration)
    /// The whole answer took longer than the deadline.
    case deadlineExceeded(Duration)
    /// The stream ended before the server said it was done.
    case endedEarly
    /// A chunk was not the JSON the protocol says.
    case malformedChunk(String)
    /// The server could not be reached, or the connection broke.
    case transport(String)

    public var description: String {
        switch self {
        case .authentication(let status, let code):
            return "the API key was refused (HTTP \(status)\(code.map { ", \(Self.redacted($0))" } ?? ""))"
        case .insufficientQuota:
            return "the account has no quota left (HTTP 429, insufficient_quota)"
        case .status(let status, let type, let code, let message):
            let detail = [type, code].compactMap { $0 }.map(Self.redacted).joined(separator: ", ")
            return "the server answered HTTP \(status)\(detail.isEmpty ? "" : " (\(detail))")\(message.map { ": \(Self.redacted($0))" } ?? "")"
        case .streamError(let type, let code, let message):
            let detail = [type, code].compactMap { $0 }.map(Self.redacted).joined(separator: ", ")
            return "the stream reported an error\(detail.isEmpty ? "" : " (\(detail))")\(message.map { ": \(Self.redacted($0))" } ?? "")"
        case .firstTokenTimeout(let limit):
            return "no reply within \(Self.text(limit))"
        case .deadlineExceeded(let limit):
            return "the reply took longer than \(Self.text(limit))"
        case .endedEarly:
            return "the stream ended before the reply was complete"
        case .malformedChunk(let reason):
            return "the server sent a chunk that is not a chat completion (\(reason))"
        case .transport(let reason):
            return "the server could not be reached (\(reason))"
        }
    }

    static func text(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }

    /// A server's message, cut short and with anything like a key masked: OpenAI's 401 message
    /// quotes part of the key.
    static func redacted(_ message: String) -> String { Redaction.mask(message) }
}
