/// What can go wrong between the AMI client and Asterisk. Descriptions carry no packet content.
public struct AMIClientError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case notConnected
        case connectionLost
        case authenticationFailed(String)
        case keepaliveTimeout
        case responseTimeout
        case duplicateActionID
        case closing
        case actionFailed(String)
        case protocolViolation(AMIProtocolError)
        case connectFailed(String)
        case loginTimeout(String)
        case unavailable(String, last: String)
    }

    private let code: Code
    private init(_ code: Code) { self.code = code }

    /// No logged-in connection right now (connecting, reconnecting, or stopped).
    public static let notConnected = Self(.notConnected)
    /// The connection dropped while the action waited for its reply.
    public static let connectionLost = Self(.connectionLost)
    /// Asterisk refused the login; final, not retried.
    public static func authenticationFailed(_ message: String) -> Self { Self(.authenticationFailed(message)) }
    /// A keepalive Ping went unanswered.
    public static let keepaliveTimeout = Self(.keepaliveTimeout)
    /// No reply to an action in time.
    public static let responseTimeout = Self(.responseTimeout)
    /// Another action with the same ActionID is still waiting for its reply.
    public static let duplicateActionID = Self(.duplicateActionID)
    /// The client is logging off.
    public static let closing = Self(.closing)
    /// Asterisk answered `Response: Error` with this message.
    public static func actionFailed(_ message: String) -> Self { Self(.actionFailed(message)) }
    /// The server broke the wire format.
    public static func protocolViolation(_ error: AMIProtocolError) -> Self { Self(.protocolViolation(error)) }
    /// The TCP connection could not be made.
    public static func connectFailed(_ reason: String) -> Self { Self(.connectFailed(reason)) }

    /// The server accepted the connection but sent no banner, or did not answer the login, in time.
    public static func loginTimeout(stage: String) -> Self { Self(.loginTimeout(stage)) }
    /// The client gave up reaching the server after trying for `duration`; `last` is the last failure.
    public static func unavailable(after duration: String, last: AMIClientError) -> Self { Self(.unavailable(duration, last: last.description)) }

    /// The client gave up: the server could not be reached in the time allowed.
    public var isUnavailable: Bool {
        if case .unavailable = self.code { return true }
        return false
    }

    /// Whether reconnecting cannot help.
    public var isFinal: Bool {
        if case .authenticationFailed = self.code { return true }
        return false
    }

    public var description: String {
        switch self.code {
        case .notConnected: return "not connected to the Asterisk Manager Interface"
        case .connectionLost: return "the AMI connection was lost before the reply arrived"
        case .authenticationFailed(let message): return "AMI login refused: \(message)"
        case .keepaliveTimeout: return "the AMI server did not answer a keepalive Ping"
        case .responseTimeout: return "no AMI reply in time"
        case .duplicateActionID: return "an AMI action with the same ActionID is still waiting for its reply"
        case .closing: return "the AMI client is logging off"
        case .actionFailed(let message): return "Asterisk refused the action: \(message)"
        case .protocolViolation(let error): return "AMI protocol violation: \(error)"
        case .connectFailed(let reason): return "could not connect to the AMI server: \(reason)"
        case .loginTimeout(let stage): return "the AMI server accepted the connection but sent no \(stage) in time"
        case .unavailable(let duration, let last):
            return "gave up reaching the AMI server after \(duration) (last: \(last)); check that Asterisk runs and manager.conf allows this host"
        }
    }
}
