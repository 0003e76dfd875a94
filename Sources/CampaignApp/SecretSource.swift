import Foundation

/// Where a secret comes from: an environment variable or a file, never a campaign file or a flag.
public struct SecretSource: Sendable, Hashable {
    public var environment: String?
    public var file: String?

    public init(environment: String?, file: String?) {
        self.environment = environment
        self.file = file
    }

    public struct MissingSecret: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the secret: the file when given, else the environment variable. Trailing newlines are dropped.
    public func read(environment values: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let file = self.file {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw MissingSecret(description: "cannot read the secret file \(file)")
            }
            let secret = text.trimmingCharacters(in: .newlines)
            guard !secret.isEmpty else { throw MissingSecret(description: "the secret file \(file) is empty") }
            return secret
        }
        guard let name = self.environment, let secret = values[name], !secret.isEmpty else {
            throw MissingSecret(description: "set the secret in the environment variable \(self.environment ?? "(none)") or pass a secret file")
        }
        return secret
    }
}
