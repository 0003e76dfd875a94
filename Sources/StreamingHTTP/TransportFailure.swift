import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// How a request's transport failed, in words fit for a log: never a header, body or key.
public enum TransportFailure {
    public static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPTransportError { return "\(error)" }
        if let error = error as? NIOConnectionError {
            guard let first = error.connectionErrors.first else { return "could not resolve the host" }
            return "could not connect: \(self.describe(first.error))"
        }
        if let error = error as? HTTPParserError { return "HTTP \(error)" }
        if let reason = self.handshakeReason(error) { return "TLS handshake failed: \(reason)" }
        if let error = error as? NIOSSLError { return "TLS \(error)" }
        if let error = error as? ChannelError { return "\(error)" }
        if let error = error as? IOError { return "\(error)" }
        return String(describing: type(of: error))
    }

    /// The reason a TLS handshake failed (an untrusted certificate, say); nil for anything else.
    public static func handshakeReason(_ error: any Error) -> String? {
        guard case .handshakeFailed(.sslError(let errors))? = error as? NIOSSLError, let first = errors.first else { return nil }
        // "…:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …/handshake.cc:320" → its reason.
        return "\(first)".components(separatedBy: " at ")[0].split(separator: ":").last.map(String.init) ?? ""
    }
}
