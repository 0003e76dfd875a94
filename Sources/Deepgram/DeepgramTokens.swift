import Foundation
import Logging
import NIOCore
import StreamingHTTP

/// A short-lived Deepgram access token, used as `Authorization: Bearer …` on listen and speak.
public struct DeepgramAccessToken: Sendable, Hashable {
    public var value: String
    public var expiresAt: Date

    public init(value: String, expiresAt: Date) {
        self.value = value
        self.expiresAt = expiresAt
    }

    public var credential: DeepgramCredential { .accessToken(self.value) }
}

/// Issues short-lived tokens with `POST /v1/auth/grant` (the key needs the Member role), so a
/// client can be given a token that expires instead of the key.
public struct DeepgramTokenGrant: Sendable {
    public let endpoint: DeepgramEndpoint
    private let http: StreamingHTTPClient

    public init(endpoint: DeepgramEndpoint, http: StreamingHTTPClient = .shared) {
        self.endpoint = endpoint
        self.http = http
    }

    /// A token that lives `seconds` (1…3600; Deepgram's default is 30).
    public func grant(seconds: Int = 30, now: Date = Date()) async throws -> DeepgramAccessToken {
        guard (1...3600).contains(seconds) else { throw DeepgramError.refused(status: 400, code: "INVALID_TTL", message: "ttl_seconds must be 1 to 3600") }
        let response = try await self.endpoint.post("/v1/auth/grant", query: [], json: Data(#"{"ttl_seconds":\#(seconds)}"#.utf8), http: self.http)
        struct Grant: Decodable {
            var access_token: String
            var expires_in: Double?
        }
        let body: ByteBuffer?
        do {
            body = try await response.collect(upTo: 64 << 10)
        } catch {
            throw DeepgramError.connecting(error)
        }
        guard let body, let grant = try? JSONDecoder().decode(Grant.self, from: Data(body.readableBytesView)), !grant.access_token.isEmpty else {
            throw DeepgramError.malformed("the grant has no access_token")
        }
        return DeepgramAccessToken(value: grant.access_token, expiresAt: now.addingTimeInterval(grant.expires_in ?? Double(seconds)))
    }
}
