import CampaignCore
import Conversation
import Foundation

/// `cex template render`: what the agent would say to one lead of a lead file, rendered the
/// way a call renders it. A variable the lead lacks is an error, as it is at import.
public enum TemplatePreview {
    public struct Preview: Sendable, Hashable {
        /// The opening: greeting and the automated-call disclosure.
        public var opening: String
        /// The pitch steps and the question, in the order the scripted policy says them.
        public var pitch: [String]
        public var question: String
    }

    /// A lead reference that cannot be used, with where it points.
    public struct PreviewError: Error, Hashable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var message: String
        public var description: String { "\(self.file)\(self.line.map { ":\($0)" } ?? ""): \(self.message)" }
    }

    /// "leads.csv:12" → ("leads.csv", 12); the line is the one the record starts on.
    public static func leadReference(_ text: String) -> (file: String, line: Int)? {
        guard let colon = text.lastIndex(of: ":"), let line = Int(text[text.index(after: colon)...]), line > 1 else { return nil }
        return (String(text[..<colon]), line)
    }

    /// The template variables of the record that starts on `line` of the lead file.
    public static func lead(file: String, line: Int, columns overrides: [String: String] = [:]) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: file) else { throw PreviewError(file: file, line: nil, message: "cannot read the file") }
        do {
            var reader = CSVReader(bytes: [UInt8](data))
            guard let header = try reader.next() else { throw PreviewError(file: file, line: 1, message: "is empty: no header row") }
            let columns = try LeadColumns(header: header.strings(in: reader.bytes), overrides: overrides)
            while let record = try reader.next() {
                if record.line > line { break }
                guard record.line == line else { continue }
                guard record.count == columns.names.count else {
                    throw PreviewError(file: file, line: line, message: "has \(record.count) fields; the header has \(columns.names.count)")
                }
                return columns.fields(of: record.strings(in: reader.bytes))
            }
        } catch let error as CSVError {
            throw PreviewError(file: file, line: error.line, message: error.message)
        } catch let error as LeadFileError {
            throw PreviewError(file: file, line: error.line, message: error.message)
        }
        throw PreviewError(file: file, line: line, message: "no record starts on this line")
    }

    /// A variable the lead lacks, or has empty, is a `TemplateError` naming it: the import rejects
    /// such a lead, so no call would ever say "Hi , this is…".
    public static func render(_ template: PitchTemplate, lead: [String: String]) throws -> Preview {
        for variable in template.leadVariables.sorted() where (lead[variable] ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw TemplateError(file: "", line: nil, field: variable, message: lead[variable] == nil ? "is not in the lead" : "is empty")
        }
        return Preview(
            opening: try template.render(template.openingSource, lead: lead),
            pitch: try template.pitch.map { try template.render($0, lead: lead) },
            question: try template.render(template.question, lead: lead))
    }
}
