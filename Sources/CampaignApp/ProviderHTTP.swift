import AsyncHTTPClient
import ChatCompletions
import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// The HTTP clients the cloud providers' requests go through: one per certificate authority,
/// made on first use and kept for the life of the process (as `HTTPClient.shared` is).
///
/// Unlike the shared client they follow no redirect (a key is never sent to another host), give
/// up connecting after 5 s, and never try a connection again on their own: a refused or
/// untrusted connection reaches the provider's client at once, which retries what is worth it
/// and names the rest.
enum ProviderHTTP {
    private static let clients = Mutex<[String: HTTPClient]>([:])
    private static let streamingClients = Mutex<[String: StreamingHTTPClient]>([:])

    /// The model's client: the same rules, over `StreamingHTTPClient`, whose lean request path
    /// keeps a voice turn's request off AsyncHTTPClient's bookkeeping.
    static func streamingClient(trusting caFile: String?) -> StreamingHTTPClient {
        self.streamingClients.withLock { clients in
            if let client = clients[caFile ?? ""] { return client }
            let client = StreamingHTTPClient(trustRoots: caFile.map { .file($0) } ?? .default, connectTimeout: .seconds(5))
            clients[caFile ?? ""] = client
            return client
        }
    }

    /// The client trusting the system's roots, or only the authorities in the PEM file `caFile`.
    static func client(trusting caFile: String?) -> HTTPClient {
        self.clients.withLock { clients in
            if let client = clients[caFile ?? ""] { return client }
            var configuration = HTTPClient.Configuration(
                certificateVerification: .fullVerification, redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)),
                connectionPool: .seconds(90), proxy: nil, ignoreUncleanSSLShutdown: false, decompression: .disabled,
                backgroundActivityLogger: nil)
            configuration.connectionPool.retryConnectionEstablishment = false
            if let caFile {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(caFile)
                configuration.tlsConfiguration = tls
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[caFile ?? ""] = client
            return client
        }
    }

    /// `NAME_CA_FILE` from the environment, checked: a readable PEM file of certificates.
    static func authorityFile(_ name: String, environment: [String: String]) throws -> String? {
        guard let path = environment[name], !path.isEmpty else { return nil }
        do {
            guard try !NIOSSLCertificate.fromPEMFile(path).isEmpty else { throw CocoaError(.fileReadCorruptFile) }
        } catch {
            throw EngineProviders.MissingCredential(description: "\(name) must name a PEM file of CA certificates; \(path) is not one")
        }
        return path
    }
}
