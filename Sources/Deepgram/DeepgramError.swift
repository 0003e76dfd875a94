import Foundation
import StreamingHTTP

/// How cex authenticates to Deepgram: an API key (`Authorization: Token …`) or a short-lived
/// access token from `/v1/auth/grant` (`Authorization: Bearer …`).
public enum DeepgramCredential: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    case apiKey(String)
    case accessToken(String)

    /// Printed without the secret, however it is printed.
    public var description: String {
        switch self {
        case .apiKey: "api key <redacted>"
        case .accessToken: "access token <redacted>"
        }
    }

    public var debugDescription: String { self.description }
    public var customMirror: Mirror { Mirror(self, children: [:], displayStyle: .enum) }

    /// The secret itself, for masking it in what Deepgram sends back.
    var secret: String {
        switch self {
        case .apiKey(let key): key
        case .accessToken(let token): token
        }
    }

    var authorization: (String, String) {
        switch self {
        case .apiKey(let key): ("Authorization", "Token \(key)")
        case .accessToken(let token): ("Authorization", "Bearer \(token)")
        }
    }
}

/// What went wrong with Deepgram. Descriptions carry Deepgram's codes, never the key, audio or text.
public enum DeepgramError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request (or the WebSocket upgrade) was refused: the status and Deepgram's error code.
    case refused(status: Int, code: String?, message: String?)
    /// The stream was closed by Deepgram: the close code and the reason's code (`NET-0001`, `DATA-0000`, …).
    case closed(code: UInt16?, reason: String)
    /// Deepgram could not be reached, or the connection broke and could not be made again.
    case unreachable(String)
    /// Deepgram's certificate was not trusted: the TLS handshake's reason.
    case untrusted(String)
    /// A message that is not Deepgram's protocol.
    case malformed(String)

    public var isAuthentication: Bool {
        if case .refused(let status, _, _) = self { return status == 401 || status == 403 }
        return false
    }

    public var description: String {
        switch self {
        case .refused(let status, let code, let message):
            let what = status == 401 || status == 403 ? "Deepgram refused the credentials" : "Deepgram refused the request"
            return "\(what) (HTTP \(status)\(code.map { ", \(Redaction.mask($0, limit: 100))" } ?? ""))\(message.map { ": \(Redaction.mask($0, limit: 200))" } ?? "")"
        case .closed(let code, let reason):
            let meaning: String
            switch true {
            case reason.contains("NET-0001"): meaning = "no audio reached Deepgram for 10 s"
            case reason.contains("NET-0000"): meaning = "Deepgram produced nothing in time"
            case reason.contains("DATA-0000"): meaning = "Deepgram could not decode the audio"
            default: meaning = "Deepgram closed the stream"
            }
            return "\(meaning) (close \(code.map(String.init) ?? "without a code")\(reason.isEmpty ? "" : ", \(Redaction.mask(reason, limit: 100))"))"
        case .unreachable(let reason):
            return "Deepgram could not be reached (\(reason))"
        case .untrusted(let reason):
            return "Deepgram's certificate was not trusted (TLS handshake failed: \(reason))"
        case .malformed(let reason):
            return "Deepgram sent something unexpected (\(reason))"
        }
    }
}

extension DeepgramError {
    /// The error with every copy of the credential's secret that Deepgram sent back masked.
    func redacting(_ credential: DeepgramCredential) -> DeepgramError {
        let secrets = [credential.secret]
        switch self {
        case .refused(let status, let code, let message):
            return .refused(status: status, code: code.map { Redaction.mask($0, secrets: secrets) }, message: message.map { Redaction.mask($0, secrets: secrets) })
        case .closed(let code, let reason):
            return .closed(code: code, reason: Redaction.mask(reason, secrets: secrets))
        case .unreachable, .untrusted, .malformed:
            return self
        }
    }

    /// Worth trying again: a 429, a server error, or no answer at all (never a refused key or a bad request).
    var isTransient: Bool {
        switch self {
        case .refused(let status, _, _): status == 429 || status >= 500
        case .unreachable: true
        // Asking again would not make the certificate trusted.
        case .untrusted, .closed, .malformed: false
        }
    }

    /// A connection that could not be made: what TLS said, else the error's type (never its data).
    static func connecting(_ error: any Error) -> DeepgramError {
        if let error = error as? DeepgramError { return error }
        if let reason = TransportFailure.handshakeReason(error) { return .untrusted(reason) }
        return .unreachable(String(describing: type(of: error)))
    }
}
