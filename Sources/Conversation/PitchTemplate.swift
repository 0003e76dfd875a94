import Foundation
import Mustache
import YAMLSource
import Yams

/// A campaign's pitch, written by a sales manager as YAML (see `templates/README.md`).
///
/// Lines are Mustache text: `{{first_name}}` and other lead columns, plus `{{company}}` and
/// `{{agent_name}}`. They are rendered as text, never HTML-escaped.
public struct PitchTemplate: Sendable, Hashable, Codable {
    public struct Answer: Sendable, Hashable, Codable {
        /// Phrases that trigger it.
        public var when: PhraseSet
        public var say: String
    }

    public struct Objection: Sendable, Hashable, Codable {
        /// A stable key for reports, e.g. `price`.
        public var id: String
        /// A readable name, e.g. "Too expensive".
        public var label: String
        /// Phrases that raise it.
        public var when: PhraseSet
        public var say: String
    }

    public struct Closings: Sendable, Hashable, Codable {
        public var interested: String
        public var notInterested: String
        public var callback: String
        public var doNotCall: String
        public var wrongPerson: String
        public var noResponse: String

        static let keys: Set<String> = ["interested", "not_interested", "callback", "do_not_call", "wrong_person", "no_response"]

        enum CodingKeys: String, CodingKey {
            case interested
            case notInterested = "not_interested"
            case callback
            case doNotCall = "do_not_call"
            case wrongPerson = "wrong_person"
            case noResponse = "no_response"
        }
    }

    public var name: String
    public var company: String
    public var agentName: String
    /// What the call is for, e.g. "book a free home energy assessment". Goes into the record as the objective.
    public var goal: String
    /// The first line: greets the lead by name and says who is calling.
    public var greeting: String
    /// The compliance line: automated assistant, on whose behalf, how to opt out. A default is used when absent.
    public var disclosure: String?
    /// The pitch, one step per caller turn.
    public var pitch: [String]
    /// The ask the pitch leads to; repeated after answers and objections.
    public var question: String
    public var faq: [Answer]
    public var objections: [Objection]
    public var closings: Closings
    /// The DTMF key that opts out.
    public var optOutKey: String?
    /// Lead columns the template needs; a lead without one is never called with this template.
    public var requiredFields: [String]?
    /// The message left on an answering machine, after its record tone (or after its greeting
    /// and 1 s of quiet); absent, no message is ever left (a recorded artificial-voice message
    /// needs the same consent as the call). It must name the company.
    public var voicemail: String?

    enum CodingKeys: String, CodingKey {
        case name, company, goal, greeting, disclosure, pitch, question, faq, objections, closings, voicemail
        case agentName = "agent_name"
        case optOutKey = "opt_out_key"
        case requiredFields = "required_fields"
    }

    public static let defaultDisclosure =
        "I'm an automated assistant calling on behalf of {{company}}. If you'd rather not get these calls, just say stop, or press {{opt_out_key}}, and we won't call again."

    /// The opening, unrendered: greeting then disclosure.
    public var openingSource: String { self.greeting + " " + (self.disclosure ?? Self.defaultDisclosure) }

    /// Reads and checks a template file. Errors name the file and the field.
    public static func load(path: String) throws -> PitchTemplate {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TemplateError(file: path, line: nil, field: nil, message: "cannot read the file")
        }
        return try self.parse(text, file: path)
    }

    public static func parse(_ yaml: String, file: String) throws -> PitchTemplate {
        func fail(_ problem: YAMLSource.Problem) -> TemplateError {
            TemplateError(file: file, line: problem.line, field: problem.field, message: problem.message)
        }
        let template: PitchTemplate
        do throws(YAMLSource.Problem) {
            let source = try YAMLSource(yaml)
            // A misspelt key (`gaol:`) is a mistake, not a default.
            let checks = [
                source.unknownKey(known: Self.keys), source.unknownKey(at: ["closings"], known: Closings.keys),
                source.unknownKeyInItems(of: "faq", known: ["when", "say"]),
                source.unknownKeyInItems(of: "objections", known: ["id", "label", "when", "say"]),
            ]
            if var unknown = checks.lazy.compactMap({ $0 }).first {
                unknown.message = "is not a template setting"
                throw unknown
            }
            template = try source.decode(PitchTemplate.self)
        } catch {
            throw fail(error)
        }
        try template.validate(file: file, source: yaml)
        return template
    }

    static let keys: Set<String> = [
        "name", "company", "goal", "greeting", "disclosure", "pitch", "question", "faq", "objections", "closings", "agent_name",
        "opt_out_key", "required_fields", "voicemail",
    ]

    /// The compliance rules every template meets, and Mustache that parses.
    func validate(file: String, source: String) throws {
        func fail(_ field: String, _ message: String) -> TemplateError {
            TemplateError(file: file, line: Self.line(of: field, in: source), field: field, message: message)
        }
        let disclosure = (self.disclosure ?? Self.defaultDisclosure).lowercased()
        guard disclosure.contains("automated") else { throw fail("disclosure", "must say that the caller is an automated assistant") }
        guard disclosure.contains("{{company}}") || disclosure.contains(self.company.lowercased()) else {
            throw fail("disclosure", "must name the company the call is for")
        }
        guard disclosure.contains("stop") || disclosure.contains("{{opt_out_key}}") || disclosure.contains("opt out") else {
            throw fail("disclosure", "must say how to opt out (say stop, or press a key)")
        }
        guard !self.pitch.isEmpty else { throw fail("pitch", "needs at least one step") }
        if let voicemail = self.voicemail?.lowercased() {
            guard voicemail.contains("{{company}}") || voicemail.contains(self.company.lowercased()) else {
                throw fail("voicemail", "must name the company the call is for")
            }
        }
        let lines: [(String, String)] = [("greeting", self.greeting), ("disclosure", self.disclosure ?? ""), ("question", self.question)]
            + (self.voicemail.map { [("voicemail", $0)] } ?? []) + self.pitch.map { ("pitch", $0) } + self.faq.map { ("faq", $0.say) } + self.objections.map { ("objections", $0.say) }
        for (field, line) in lines {
            do {
                _ = try MustacheTemplate(string: line)
            } catch {
                throw fail(field, "is not valid Mustache: \(Self.describe(error))")
            }
        }
    }

    /// A Mustache parse error in words, with where in the line it is.
    static func describe(_ error: any Error) -> String {
        guard let parse = error as? MustacheTemplate.ParserError else { return "cannot be parsed" }
        let reason: String
        switch parse.error as? MustacheTemplate.Error {
        case .sectionCloseNameIncorrect?: reason = "a section is closed with another name than it was opened with"
        case .unfinishedName?: reason = "a tag is not closed (`{{name}}`)"
        case .expectedSectionEnd?: reason = "a section is opened and never closed (`{{#name}}…{{/name}}`)"
        case .invalidSetDelimiter?: reason = "a delimiter change is badly formed"
        default: reason = "a tag is badly formed"
        }
        return "\(reason), at column \(parse.context.columnNumber) of \"\(parse.context.line.prefix(80))\""
    }

    /// The line a top-level key starts on, 1-based.
    static func line(of key: String, in source: String) -> Int? {
        for (number, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.hasPrefix("\(key):") {
            return number + 1
        }
        return nil
    }

    /// The variables a lead must bring, non-empty: every one the lines use but those the template
    /// fills itself, and its `required_fields`.
    public var leadVariables: Set<String> {
        self.variables.subtracting(["company", "agent_name", "opt_out_key"]).union(self.requiredFields ?? [])
    }

    /// Every variable the template's lines use.
    public var variables: Set<String> {
        let sources = [self.openingSource, self.question] + (self.voicemail.map { [$0] } ?? []) + self.pitch + self.faq.map(\.say) + self.objections.map(\.say)
            + [self.closings.interested, self.closings.notInterested, self.closings.callback, self.closings.doNotCall, self.closings.wrongPerson, self.closings.noResponse]
        var names = Set<String>()
        for source in sources {
            names.formUnion(Self.variables(in: source))
        }
        return names
    }

    /// The variable names one line uses, in order.
    static func variables(in line: String) -> [String] {
        line.matches(of: Self.variablePattern).map { String($0.output.1) }
    }

    /// Built once: a regex literal is parsed each time it is evaluated, and lines render on every reply.
    nonisolated(unsafe) private static let variablePattern = /\{\{\{?\s*([A-Za-z0-9_.]+)\s*\}?\}\}/

    /// The opening's chunks, exactly as the engine will hand them to the synthesiser, that are
    /// the same for every lead (the disclosure, usually): what a synthesis cache can hold
    /// before the first call.
    public var fixedOpeningSpeech: [String] {
        let marker = "\u{E000}"
        let fields = self.variables.subtracting(["company", "agent_name", "opt_out_key"])
        let lead = Dictionary(uniqueKeysWithValues: fields.map { ($0, marker) })
        guard let opening = try? self.render(self.openingSource, lead: lead) else { return [] }
        return SpeechChunker.chunks(of: opening).map(SpokenText.normalize).filter { !$0.contains(marker) }
    }

    /// Renders one line as text for a lead. Missing variables are an error, never an empty gap.
    public func render(_ line: String, lead: [String: String]) throws -> String {
        var values = lead
        values["company"] = values["company"] ?? self.company
        values["agent_name"] = values["agent_name"] ?? self.agentName
        values["opt_out_key"] = values["opt_out_key"] ?? (self.optOutKey ?? "9")
        for name in Self.variables(in: line) where values[name] == nil {
            throw TemplateError(file: self.name, line: nil, field: name, message: "the lead has no value for this variable")
        }
        let template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + line)
        return template.render(values)
    }
}

/// A template problem, with where it is.
public struct TemplateError: Error, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int?, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var location = self.file
        if let line { location += ":\(line)" }
        if let field { return "\(location): \(field): \(self.message)" }
        return "\(location): \(self.message)"
    }
}
