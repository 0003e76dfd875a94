import Foundation
import YAMLSource
import Yams

/// Reads `campaigns/NAME.yaml`. Relative paths are relative to the campaign file; the template
/// is a name in `templates/` beside the campaign directory, or a path. Every error names the
/// file, the line and the field.
public enum CampaignFile {
    public static func load(path: String) throws(CampaignFileError) -> Campaign {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CampaignFileError(file: path, line: nil, field: nil, message: "cannot read the file")
        }
        return try self.parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(CampaignFileError) -> Campaign {
        func fail(_ problem: YAMLSource.Problem) -> CampaignFileError {
            CampaignFileError(file: file, line: problem.line, field: problem.field, message: problem.message)
        }
        let source: YAMLSource
        do {
            source = try YAMLSource(text)
        } catch {
            throw fail(error)
        }
        // Unknown keys first: a misspelt key explains the "missing" one that would be reported otherwise.
        if var unknown = source.unknownKey(known: RawCampaign.knownKeys) {
            unknown.message = "is not a campaign setting"
            throw fail(unknown)
        }
        if var unknown = source.unknownKey(at: ["providers"], known: Set(RawCampaign.Providers.keys)) {
            unknown.message = "is not a provider setting (\(RawCampaign.Providers.keys.joined(separator: ", ")))"
            throw fail(unknown)
        }
        if var unknown = source.unknownKey(at: ["ami"], known: RawCampaign.AMI.keys) {
            unknown.message = "is not an AMI setting (\(RawCampaign.AMI.keys.sorted().joined(separator: ", ")))"
            throw fail(unknown)
        }
        let raw: RawCampaign
        do {
            raw = try source.decode(RawCampaign.self)
        } catch {
            throw fail(error)
        }
        return try Builder(raw: raw, node: source.root, file: file).build()
    }

    /// The `name:` a campaign file declares, without checking the rest; nil when the file cannot
    /// be read or has none.
    public static func declaredName(path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
            let node = try? Yams.compose(yaml: text)
        else { return nil }
        return node.mapping?["name"]?.string
    }

}

/// The file as written: everything optional, checked by `Builder`.
struct RawCampaign: Decodable {
    struct AMI: Decodable {
        var host: String?
        var port: Int?
        var username: String?
        var secretEnv: String?
        var secretFile: String?
        var secret: String?
        var giveUpAfter: String?

        static let keys: Set<String> = ["host", "port", "username", "secret", "give_up_after", "secret_env", "secret_file"]

        enum CodingKeys: String, CodingKey {
            case host, port, username, secret
            case giveUpAfter = "give_up_after"
            case secretEnv = "secret_env"
            case secretFile = "secret_file"
        }
    }

    struct Answered: Decodable {
        var context: String?
        var exten: String?
        var priority: String?
        var application: String?
    }

    struct Engine: Decodable {
        var mode: String?
        var address: String?
    }

    struct Window: Decodable {
        var days: [String]?
        var start: String?
        var end: String?
    }

    struct Rule: Decodable {
        var delay: String?
        var backoff: Double?
        var max: Int?
    }

    struct Retry: Decodable {
        var maxAttempts: Int?
        var rules: [String: Rule?] = [:]

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys {
                if key.stringValue == "max_attempts" {
                    self.maxAttempts = try container.decode(Int.self, forKey: key)
                } else {
                    self.rules[key.stringValue] = try container.decode(Rule?.self, forKey: key)
                }
            }
        }
    }

    struct Providers: Decodable {
        var speech: String?
        var language: String?
        var sttModel: String?
        var ttsModel: String?
        var ttsTransport: String?
        var llmModel: String?
        var tokenLimitField: String?
        var firstToken: String?

        static let keys = ["speech", "language", "stt_model", "tts_model", "tts_transport", "llm_model", "token_limit_field", "first_token"]

        enum CodingKeys: String, CodingKey {
            case speech, language
            case sttModel = "stt_model"
            case ttsModel = "tts_model"
            case ttsTransport = "tts_transport"
            case llmModel = "llm_model"
            case tokenLimitField = "token_limit_field"
            case firstToken = "first_token"
        }
    }

    var name: String
    var leads: OneOrMany
    var template: String
    var callerID: String?
    var defaultCountry: String?
    var defaultTimeZone: String?
    var columns: [String: String]?
    var ami: AMI
    var dial: String
    var answered: Answered?
    var engine: Engine?
    var amd: Bool?
    var maxConcurrentCalls: Int?
    var callsPerSecond: Double?
    var ringTimeout: String?
    var drain: String?
    var window: Window?
    var retry: Retry?
    var dnc: OneOrMany?
    var testNumbers: [String]?
    var abandonLimitPercent: Double?
    var providers: Providers?
    var analysisFields: [String: String]?

    enum CodingKeys: String, CodingKey {
        case name, leads, template, columns, ami, dial, answered, engine, amd, window, retry, dnc, providers, drain
        case callerID = "caller_id"
        case defaultCountry = "default_country"
        case defaultTimeZone = "default_time_zone"
        case maxConcurrentCalls = "max_concurrent_calls"
        case callsPerSecond = "calls_per_second"
        case ringTimeout = "ring_timeout"
        case testNumbers = "test_numbers"
        case abandonLimitPercent = "abandon_limit_percent"
        case analysisFields = "analysis_fields"
    }

    /// Unknown keys are mistakes (a misspelt `max_concurent_calls` must not fall back to a default).
    static let knownKeys: Set<String> = [
        "name", "leads", "template", "caller_id", "default_country", "default_time_zone", "columns", "ami", "dial", "answered",
        "engine", "amd", "max_concurrent_calls", "calls_per_second", "ring_timeout", "window", "retry", "dnc", "test_numbers",
        "abandon_limit_percent", "drain", "providers", "analysis_fields",
    ]
}

/// A string or a list of strings.
struct OneOrMany: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            self.values = [one]
        } else {
            self.values = try container.decode([String].self)
        }
    }
}

/// Checks the raw file and resolves it into a `Campaign`.
struct Builder {
    var raw: RawCampaign
    var node: Node
    var file: String

    func fail(_ path: [String], _ message: String) -> CampaignFileError {
        let keys: [any CodingKey] = path.map { component in
            if let index = Int(component) { return AnyKey(intValue: index) }
            return AnyKey(stringValue: component)
        }
        return CampaignFileError(file: self.file, line: YAMLSource(root: self.node).line(of: keys), field: YAMLSource.name(keys), message: message)
    }

    var directory: URL { URL(fileURLWithPath: self.file).deletingLastPathComponent() }

    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return self.directory.appendingPathComponent(path).standardizedFileURL.path
    }

    func build() throws(CampaignFileError) -> Campaign {
        let raw = self.raw
        guard raw.name.range(of: #"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"#, options: .regularExpression) != nil else {
            throw self.fail(["name"], "use letters, digits, '-', '_' or '.' (at most 64), starting with a letter or digit")
        }
        guard !raw.leads.values.isEmpty else { throw self.fail(["leads"], "name at least one CSV file") }
        let leads = raw.leads.values.map(self.resolve)
        for (index, path) in leads.enumerated() where !FileManager.default.fileExists(atPath: path) {
            throw self.fail(raw.leads.values.count == 1 ? ["leads"] : ["leads", "\(index)"], "no such file: \(path)")
        }

        // Template: a name in ../templates, or a path.
        let template: String
        if raw.template.contains("/") || raw.template.hasSuffix(".yaml") {
            template = self.resolve(raw.template)
        } else {
            template = self.directory.deletingLastPathComponent().appendingPathComponent("templates/\(raw.template).yaml").standardizedFileURL.path
        }
        guard FileManager.default.fileExists(atPath: template) else { throw self.fail(["template"], "no such template: \(template)") }

        guard let callerID = raw.callerID, !callerID.isEmpty else {
            throw self.fail(["caller_id"], "is required: calls must present a caller ID that can be called back")
        }
        guard !callerID.contains("\r"), !callerID.contains("\n"), !callerID.contains(",") else {
            throw self.fail(["caller_id"], "must be one line without commas, e.g. \"Bright Solar\" <+12125550100>")
        }
        let country = raw.defaultCountry ?? "US"
        guard PhoneNumberParser.isKnownRegion(country) else { throw self.fail(["default_country"], "is not an ISO 3166 region code such as US or GB") }
        if let zone = raw.defaultTimeZone, TimeZone(identifier: zone) == nil {
            throw self.fail(["default_time_zone"], "is not an IANA timezone such as America/Chicago")
        }

        // AMI.
        if raw.ami.secret != nil {
            throw self.fail(["ami", "secret"], "secrets never go in campaign files: set secret_env (default CEX_AMI_SECRET) or secret_file")
        }
        let giveUp = try self.duration(raw.ami.giveUpAfter ?? "60s", path: ["ami", "give_up_after"])
        guard giveUp >= .seconds(5), giveUp <= .seconds(3600) else { throw self.fail(["ami", "give_up_after"], "must be 5s–1h") }
        let ami = Campaign.AMI(
            host: raw.ami.host ?? "127.0.0.1",
            port: raw.ami.port ?? 5038,
            username: raw.ami.username ?? "",
            secretEnvironment: raw.ami.secretEnv ?? "CEX_AMI_SECRET",
            secretFile: raw.ami.secretFile.map(self.resolve),
            giveUpAfter: giveUp
        )
        guard (1...65535).contains(ami.port) else { throw self.fail(["ami", "port"], "must be 1–65535") }
        guard !ami.username.isEmpty else { throw self.fail(["ami", "username"], "is required") }

        guard raw.dial.contains("{phone}") || raw.dial.contains("{digits}"), raw.dial.contains("/") else {
            throw self.fail(["dial"], "must be a channel with {phone} or {digits}, e.g. PJSIP/{phone}@trunk")
        }
        guard !raw.dial.contains(","), !raw.dial.contains("\n") else { throw self.fail(["dial"], "must not contain commas or line breaks") }

        let answered: Campaign.Answered
        switch raw.answered {
        case nil:
            answered = .dialplan(context: "ai-outbound", exten: "s", priority: "1")
        case let value? where value.application != nil:
            guard value.application?.lowercased() == "audiosocket", value.context == nil else {
                throw self.fail(["answered", "application"], "only AudioSocket is supported; or give context/exten/priority")
            }
            answered = .audioSocket
        case let value?:
            guard let context = value.context, !context.isEmpty else { throw self.fail(["answered", "context"], "is required") }
            answered = .dialplan(context: context, exten: value.exten ?? "s", priority: value.priority ?? "1")
        }

        let engine: Campaign.Engine
        let mode = raw.engine?.mode ?? "embedded"
        let address = raw.engine?.address ?? "127.0.0.1:9092"
        guard let (host, port) = Self.hostPort(address) else { throw self.fail(["engine", "address"], "must be HOST:PORT") }
        switch mode {
        case "embedded": engine = .embedded(host: host, port: port)
        case "shared": engine = .shared(host: host, port: port)
        default: throw self.fail(["engine", "mode"], "must be embedded or shared")
        }

        let amd = raw.amd ?? false
        if amd, answered == .audioSocket {
            throw self.fail(["amd"], "AMD runs in the dialplan: give answered.context (see the README's extensions.conf)")
        }
        let maxCalls = raw.maxConcurrentCalls ?? 5
        guard (1...1000).contains(maxCalls) else { throw self.fail(["max_concurrent_calls"], "must be 1–1000") }
        let cps = raw.callsPerSecond ?? 1
        guard cps > 0, cps <= 100 else { throw self.fail(["calls_per_second"], "must be more than 0 and at most 100") }
        let ring = try self.duration(raw.ringTimeout ?? "25s", path: ["ring_timeout"])
        guard ring >= .seconds(15), ring <= .seconds(120) else {
            throw self.fail(["ring_timeout"], "must be 15s–120s (callees get at least 15 s to answer)")
        }
        let drain = try self.duration(raw.drain ?? "30s", path: ["drain"])
        guard drain <= .seconds(600) else { throw self.fail(["drain"], "must be 0s–10m") }

        let window = try self.window(raw.window)
        let retry = try self.retry(raw.retry)
        let dnc = (raw.dnc?.values ?? []).map(self.resolve)
        for (index, path) in dnc.enumerated() where !FileManager.default.fileExists(atPath: path) {
            throw self.fail(dnc.count == 1 && raw.dnc?.values.count == 1 ? ["dnc"] : ["dnc", "\(index)"], "no such file: \(path)")
        }

        var testNumbers: Set<PhoneNumber>?
        if let numbers = raw.testNumbers {
            let parser = try! PhoneNumberParser(defaultRegion: country)
            var set = Set<PhoneNumber>()
            for (index, number) in numbers.enumerated() {
                do {
                    set.insert(try parser.parse(number))
                } catch {
                    throw self.fail(["test_numbers", "\(index)"], "\(error)")
                }
            }
            testNumbers = set
        }
        let abandon = raw.abandonLimitPercent ?? 3
        guard abandon >= 0, abandon <= 3 else { throw self.fail(["abandon_limit_percent"], "must be 0–3: the legal limit is 3%") }
        let providers = try self.providers(raw.providers)
        let analysisFields = try self.analysisFields(raw.analysisFields)

        return Campaign(
            name: raw.name, file: self.file, leads: leads, template: template, callerID: callerID, defaultCountry: country.uppercased(),
            defaultTimeZone: raw.defaultTimeZone, columns: raw.columns ?? [:], ami: ami, dial: raw.dial, answered: answered, engine: engine,
            amd: amd, maxConcurrentCalls: maxCalls, callsPerSecond: cps, ringTimeout: ring, drain: drain, window: window, retry: retry, dnc: dnc,
            testNumbers: testNumbers, abandonLimitPercent: abandon, providers: providers, analysisFields: analysisFields
        )
    }

    /// `analysis_fields`: name → what the model looks for, in the file's order.
    func analysisFields(_ raw: [String: String]?) throws(CampaignFileError) -> [AnalysisField] {
        guard let raw else { return [] }
        let names = self.node.mapping?["analysis_fields"]?.mapping?.keys.compactMap(\.string) ?? raw.keys.sorted()
        guard names.count <= 20 else { throw self.fail(["analysis_fields"], "at most 20 fields") }
        return try names.map { name throws(CampaignFileError) in
            guard name.range(of: #"^[a-z][a-z0-9_]{0,39}$"#, options: .regularExpression) != nil else {
                throw self.fail(["analysis_fields", name], "a field name is lower case letters, digits and '_' (at most 40), starting with a letter")
            }
            guard !AnalysisField.reservedNames.contains(name) else {
                throw self.fail(["analysis_fields", name], "is already a report column: choose another name")
            }
            let description = raw[name]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard !description.isEmpty, description.count <= 300 else {
                throw self.fail(["analysis_fields", name], "describe what the model should look for, in at most 300 characters")
            }
            return AnalysisField(name: name, description: description)
        }
    }

    func providers(_ raw: RawCampaign.Providers?) throws(CampaignFileError) -> ProviderSettings {
        var settings = ProviderSettings()
        guard let raw else { return settings }
        func choice<T: RawRepresentable & CaseIterable>(_ value: String?, _ key: String, default: T) throws(CampaignFileError) -> T where T.RawValue == String {
            guard let value else { return `default` }
            guard let chosen = T(rawValue: value) else {
                throw self.fail(["providers", key], "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return chosen
        }
        settings.speech = try choice(raw.speech, "speech", default: ProviderSettings.Speech.offline)
        settings.language = try choice(raw.language, "language", default: ProviderSettings.Language.scripted)
        for (value, key) in [(raw.sttModel, "stt_model"), (raw.ttsModel, "tts_model"), (raw.llmModel, "llm_model")] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "&" || $0 == "?" }) {
                throw self.fail(["providers", key], "must be a model name such as nova-3, aura-2-thalia-en or gpt-4o")
            }
        }
        settings.sttModel = raw.sttModel
        settings.ttsModel = raw.ttsModel
        settings.llmModel = raw.llmModel
        switch raw.ttsTransport ?? "websocket" {
        case "websocket": settings.ttsOverREST = false
        case "rest": settings.ttsOverREST = true
        default: throw self.fail(["providers", "tts_transport"], "must be websocket or rest")
        }
        let field = raw.tokenLimitField ?? "max_tokens"
        guard ["max_tokens", "max_completion_tokens"].contains(field) else {
            throw self.fail(["providers", "token_limit_field"], "must be max_tokens or max_completion_tokens")
        }
        settings.tokenLimitField = field
        if let text = raw.firstToken {
            let milliseconds = text.hasSuffix("ms") ? Int64(text.dropLast(2).trimmingCharacters(in: .whitespaces)) : nil
            var limit = Duration.milliseconds(milliseconds ?? 0)
            if milliseconds == nil { limit = try self.duration(text, path: ["providers", "first_token"]) }
            guard limit >= .milliseconds(300), limit <= .seconds(30) else {
                throw self.fail(["providers", "first_token"], "must be between 300ms and 30s")
            }
            settings.firstToken = limit
        }
        return settings
    }

    func window(_ raw: RawCampaign.Window?) throws(CampaignFileError) -> CallingWindow {
        guard let raw else { return .legal }
        var days = Set(CallingWindow.Day.allCases)
        if let names = raw.days {
            days = []
            for (index, name) in names.enumerated() {
                guard let day = CallingWindow.Day(name: name) else { throw self.fail(["window", "days", "\(index)"], "is not a day (mon … sun)") }
                days.insert(day)
            }
        }
        guard let start = CallingWindow.minutes(raw.start ?? "08:00") else { throw self.fail(["window", "start"], "must be HH:MM") }
        guard let end = CallingWindow.minutes(raw.end ?? "21:00") else { throw self.fail(["window", "end"], "must be HH:MM") }
        let window = CallingWindow(days: days, start: start, end: end)
        guard start < end else { throw self.fail(["window", "end"], "must be after start") }
        guard window.isInside(.legal) else {
            throw self.fail(["window", start < CallingWindow.legal.start ? "start" : "end"],
                "the window can only narrow the legal one, 08:00–21:00 in the callee's local time")
        }
        return window
    }

    func retry(_ raw: RawCampaign.Retry?) throws(CampaignFileError) -> RetryPolicy {
        var policy = RetryPolicy.standard
        guard let raw else { return policy }
        if let max = raw.maxAttempts {
            guard (1...50).contains(max) else { throw self.fail(["retry", "max_attempts"], "must be 1–50") }
            policy.maxAttempts = max
        }
        for (name, rule) in raw.rules {
            guard let retryClass = RetryClass(rawValue: name) else {
                let names = RetryClass.allCases.map(\.rawValue).joined(separator: ", ")
                throw self.fail(["retry", name], "is not an outcome class that can be retried (\(names), max_attempts); final outcomes never are")
            }
            guard let rule else {
                policy.rules[retryClass] = nil
                continue
            }
            let base = policy.rules[retryClass] ?? RetryPolicy.Rule(delay: .seconds(86_400), maxAttempts: 1)
            let delay = try rule.delay.map { text throws(CampaignFileError) in try self.duration(text, path: ["retry", name, "delay"]) } ?? base.delay
            guard delay >= .seconds(120) else { throw self.fail(["retry", name, "delay"], "must be at least 2m") }
            let backoff = rule.backoff ?? base.backoff
            guard backoff >= 1, backoff <= 10 else { throw self.fail(["retry", name, "backoff"], "must be 1–10") }
            let max = rule.max ?? base.maxAttempts
            guard (1...20).contains(max) else { throw self.fail(["retry", name, "max"], "must be 1–20") }
            policy.rules[retryClass] = RetryPolicy.Rule(delay: delay, backoff: backoff, maxAttempts: max)
        }
        return policy
    }

    /// "90s", "15m", "2h", "1d", or plain seconds.
    func duration(_ text: String, path: [String]) throws(CampaignFileError) -> Duration {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text.trimmingCharacters(in: .whitespaces))
        var scale: Int64 = 1
        if let last = number.last, let unit = units[last] {
            scale = unit
            number = number.dropLast()
        }
        guard let value = Int64(number), value >= 0 else { throw self.fail(path, "must be a duration such as 90s, 15m, 2h or 1d") }
        return .seconds(value * scale)
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(text[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
}
