import Foundation

/// Masks secrets in text an upstream sent (an error message, a code, a close reason) before it is
/// logged or stored: a server that echoes the request's Authorization header must not put the
/// key into our logs or call records.
public enum Redaction {
    /// `text`, cut to `limit` characters, with every occurrence of `secrets` and every word that
    /// looks like a key (an `sk-`/`sk_` prefix, or 32 characters or more without a space) masked.
    public static func mask(_ text: String, secrets: [String] = [], limit: Int = 300) -> String {
        var text = String(text.prefix(limit + secrets.map(\.count).reduce(0, +)))
        for secret in secrets where secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: "[redacted]")
        }
        let words = text.prefix(limit).split(separator: " ", omittingEmptySubsequences: false).map { word -> Substring in
            let plain = word.trimmingPrefix { !$0.isLetter && !$0.isNumber }
            return plain.hasPrefix("sk-") || plain.hasPrefix("sk_") || plain.count >= 32 ? "[redacted]" : word
        }
        return words.joined(separator: " ")
    }
}
