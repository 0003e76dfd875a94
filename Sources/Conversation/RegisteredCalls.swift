import Foundation
import Logging

/// A call registered for the engine: which template it runs and for whom. Stored as
/// `<directory>/<call id>.json`, written by whatever places the call before it dials:
///
///     {"template": "solar-assessment", "lead": {"first_name": "Ana"}, "time_zone": "America/Chicago"}
public struct RegisteredCall: Sendable, Hashable, Codable {
    /// A template name: `<templates>/<name>.yaml`.
    public var template: String
    /// The lead's fields, the template's variables.
    public var lead: [String: String]
    /// The callee's IANA timezone; the engine's own when absent.
    public var timeZone: String?

    public init(template: String, lead: [String: String], timeZone: String? = nil) {
        self.template = template
        self.lead = lead
        self.timeZone = timeZone
    }

    enum CodingKeys: String, CodingKey {
        case template, lead
        case timeZone = "time_zone"
    }
}

/// Resolves AudioSocket UUIDs from a directory of registered calls, until the campaign store
/// does. A UUID without a file, or with a file or template that does not load, is refused
/// (and the reason logged with the file's path, never the lead's data).
public struct RegisteredCallDirectory: CallResolver {
    public var directory: URL
    public var templates: URL
    public var logger: Logger

    public init(directory: URL, templates: URL, logger: Logger) {
        self.directory = directory
        self.templates = templates
        self.logger = logger
    }

    public func resolve(callID: UUID) async -> ResolvedCall? {
        let file = self.directory.appendingPathComponent("\(callID.uuidString.lowercased()).json")
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            let call = try JSONDecoder().decode(RegisteredCall.self, from: data)
            let timeZone = try call.timeZone.map { name in
                guard let zone = TimeZone(identifier: name) else { throw RegistrationError(message: "time_zone: unknown timezone") }
                return zone
            }
            guard !call.template.contains("/"), !call.template.hasPrefix(".") else {
                throw RegistrationError(message: "template: a name in the templates directory, not a path")
            }
            let template = try PitchTemplate.load(path: self.templates.appendingPathComponent("\(call.template).yaml").path)
            return ResolvedCall(
                context: CallContext(callID: callID, lead: call.lead, timeZone: timeZone ?? .current, startedAt: Date()),
                template: template
            )
        } catch let error as DecodingError {
            self.logger.error("registered call unreadable", metadata: ["file": "\(file.path)", "error": "\(Self.describe(error))"])
        } catch {
            self.logger.error("registered call unusable", metadata: ["file": "\(file.path)", "error": "\(error)"])
        }
        return nil
    }

    /// The field and problem, without the file's values.
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "\(key.stringValue): is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): has the wrong type"
        case .dataCorrupted: return "not valid JSON"
        @unknown default: return "not a registered call"
        }
    }
}

struct RegistrationError: Error, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}
