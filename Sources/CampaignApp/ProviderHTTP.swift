import Foundation
import NIOSSL
import StreamingHTTP
import Synchronization

/// The HTTP clients the cloud providers' requests go through: one per certificate authority,
/// made on first use and kept for the life of the process.
///
/// They follow no redirect (a key is never sent to another host), give up connecting after 5 s,
/// and never try a connection again on their own (but for a kept-alive connection found
/// closed): a refused or untrusted connection reaches the provider's client at once, which
/// retries what is worth it and names the rest.
enum ProviderHTTP {
    private static let clients = Mutex<[String: StreamingHTTPClient]>([:])

    /// The client trusting the system's roots, or only the authorities in the PEM file `caFile`.
    static func client(trusting caFile: String?) -> StreamingHTTPClient {
        self.clients.withLock { clients in
            if let client = clients[caFile ?? ""] { return client }
            let client = StreamingHTTPClient(trustRoots: caFile.map { .file($0) } ?? .default, connectTimeout: .seconds(5))
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
