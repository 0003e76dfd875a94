import Foundation
import Testing

@testable import CampaignCore

/// A scratch project: campaigns/, templates/ and a lead file.
struct ScratchProject {
    let root: URL

    init() throws {
        self.root = FileManager.default.temporaryDirectory.appendingPathComponent("cex-core-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.root.appendingPathComponent("campaigns"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: self.root.appendingPathComponent("templates"), withIntermediateDirectories: true)
        try "name: t\n".write(to: self.root.appendingPathComponent("templates/pitch.yaml"), atomically: true, encoding: .utf8)
        try "phone,first_name\n2125550101,Ana\n".write(to: self.root.appendingPathComponent("campaigns/leads.csv"), atomically: true, encoding: .utf8)
    }

    var campaignPath: String { self.root.appendingPathComponent("campaigns/c.yaml").path }

    static let valid = """
        name: spring-solar
        leads: leads.csv
        template: pitch
        caller_id: '"Bright Solar" <+12125550100>'
        ami:
          host: 127.0.0.1
          port: 5038
          username: cex
        dial: PJSIP/{phone}@trunk
        max_concurrent_calls: 4
        calls_per_second: 2
        ring_timeout: 30s
        window:
          days: [mon, tue, wed, thu, fri]
          start: "09:00"
          end: "20:00"
        retry:
          max_attempts: 4
          busy: {delay: 10m, backoff: 2, max: 3}
          voicemail: null
        """

    func parse(_ text: String) throws(CampaignFileError) -> Campaign {
        try CampaignFile.parse(text, file: self.campaignPath)
    }
}

@Suite struct CampaignFileTests {
    @Test func aValidFileResolvesPathsAndKeepsEverySetting() throws {
        let project = try ScratchProject()
        let campaign = try project.parse(ScratchProject.valid)
        #expect(campaign.name == "spring-solar")
        #expect(campaign.leads == [project.root.appendingPathComponent("campaigns/leads.csv").standardizedFileURL.path])
        #expect(campaign.template == project.root.appendingPathComponent("templates/pitch.yaml").standardizedFileURL.path)
        #expect(campaign.window == CallingWindow(days: [.monday, .tuesday, .wednesday, .thursday, .friday], start: 540, end: 1200))
        #expect(campaign.retry.maxAttempts == 4)
        #expect(campaign.retry.rules[.busy] == .init(delay: .seconds(600), backoff: 2, maxAttempts: 3))
        #expect(campaign.retry.rules[.voicemail] == nil)
        #expect(campaign.retry.rules[.noAnswer] == RetryPolicy.standard.rules[.noAnswer])
        #expect(campaign.ringTimeout == .seconds(30))
        #expect(campaign.answered == .dialplan(context: "ai-outbound", exten: "s", priority: "1"))
        #expect(campaign.engine == .embedded(host: "127.0.0.1", port: 9092))
        #expect(campaign.ami.secretEnvironment == "CEX_AMI_SECRET")
        #expect(campaign.channel(for: PhoneNumber(e164: "+12125550101")!) == "PJSIP/+12125550101@trunk")
    }

    /// Each broken file: the line and field the error names, and a word of the message.
    @Test(arguments: [
        ("ring_timeout: 30s", "ring_timeout: thirty", 12, "ring_timeout", "duration"),
        ("max_concurrent_calls: 4", "max_concurrent_calls: four", 10, "max_concurrent_calls", "whole number"),
        ("max_concurrent_calls: 4", "max_concurent_calls: 4", 10, "max_concurent_calls", "not a campaign setting"),
        ("  username: cex", "  username: cex\n  secret: hunter2", 9, "ami.secret", "never go in campaign files"),
        ("  username: cex", "  username: cex\n  secert_env: MY_SECRET", 9, "ami.secert_env", "is not an AMI setting"),
        ("  username: cex", "  username: cex\n  give_up_after: 2s", 9, "ami.give_up_after", "5s–1h"),
        ("  start: \"09:00\"", "  start: \"07:00\"", 15, "window.start", "only narrow"),
        ("  end: \"20:00\"", "  end: \"22:30\"", 16, "window.end", "only narrow"),
        ("days: [mon, tue, wed, thu, fri]", "days: [mon, tue, wed, thu, fry]", 14, "window.days[4]", "not a day"),
        ("leads: leads.csv", "leads: missing.csv", 2, "leads", "no such file"),
        ("template: pitch", "template: nope", 3, "template", "no such template"),
        ("  busy: {delay: 10m, backoff: 2, max: 3}", "  do_not_call: {delay: 10m}", 19, "retry.do_not_call", "final outcomes"),
        ("  busy: {delay: 10m, backoff: 2, max: 3}", "  busy: {delay: 30s}", 19, "retry.busy.delay", "at least 2m"),
        ("dial: PJSIP/{phone}@trunk", "dial: PJSIP/trunk", 9, "dial", "{phone}"),
        ("ring_timeout: 30s", "ring_timeout: 5s", 12, "ring_timeout", "15 s"),
        ("  port: 5038", "  port: [5038", 8, nil, "not valid YAML"),
        ("  voicemail: null", "  voicemail: null\nproviders:\n  speech: whisper", 22, "providers.speech", "offline, deepgram"),
        ("  voicemail: null", "  voicemail: null\nproviders:\n  language: gpt", 22, "providers.language", "scripted, openai"),
        ("  voicemail: null", "  voicemail: null\nproviders:\n  api_key: sk-x", 22, "providers.api_key", "not a provider setting"),
        ("  voicemail: null", "  voicemail: null\nproviders:\n  first_token: 50ms", 22, "providers.first_token", "300ms and 30s"),
        ("  voicemail: null", "  voicemail: null\nproviders:\n  tts_transport: grpc", 22, "providers.tts_transport", "websocket or rest"),
        ("  voicemail: null", "  voicemail: null\nanalysis_fields:\n  roof_type: the roof\n  Roof-Age: its age", 23, "analysis_fields.Roof-Age", "lower case"),
        ("  voicemail: null", "  voicemail: null\nanalysis_fields:\n  summary: a second summary", 22, "analysis_fields.summary", "already a report column"),
        ("  voicemail: null", "  voicemail: null\nanalysis_fields:\n  roof_type: ''", 22, "analysis_fields.roof_type", "describe"),
        ("  voicemail: null", "  voicemail: null\nanalysis_fields:\n  roof_type: [slate, tile]", 22, "analysis_fields.roof_type", "a single value"),
        ("  voicemail: null", "  voicemail: null\nanalysis_fields: [roof_type]", 21, "analysis_fields", "a mapping of names to values"),
    ] as [(String, String, Int, String?, String)])
    func brokenFilesNameTheLineAndField(original: String, replacement: String, line: Int, field: String?, words: String) throws {
        let project = try ScratchProject()
        let text = ScratchProject.valid.replacingOccurrences(of: original, with: replacement)
        #expect(text != ScratchProject.valid)
        do {
            _ = try project.parse(text)
            Issue.record("accepted: \(replacement)")
        } catch {
            #expect(error.file == project.campaignPath)
            #expect(error.line == line, "\(error)")
            #expect(error.field == field, "\(error)")
            #expect(error.description.contains(words), "\(error)")
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func providersDefaultToOfflineAndTakeTheirOptions() throws {
        let project = try ScratchProject()
        #expect(try project.parse(ScratchProject.valid).providers == ProviderSettings())
        let cloud = try project.parse(ScratchProject.valid + """

            providers:
              speech: deepgram
              language: openai
              stt_model: nova-2-phonecall
              tts_model: aura-2-andromeda-en
              tts_transport: rest
              llm_model: gpt-4o-mini
              token_limit_field: max_completion_tokens
              first_token: 1500ms
            """)
        #expect(cloud.providers == ProviderSettings(
            speech: .deepgram, language: .openai, sttModel: "nova-2-phonecall", ttsModel: "aura-2-andromeda-en", ttsOverREST: true, llmModel: "gpt-4o-mini",
            tokenLimitField: "max_completion_tokens", firstToken: .milliseconds(1500)))
    }

    @Test func analysisFieldsKeepTheFilesOrder() throws {
        let project = try ScratchProject()
        #expect(try project.parse(ScratchProject.valid).analysisFields.isEmpty)
        let campaign = try project.parse(ScratchProject.valid + """

            analysis_fields:
              roof_type: the roof's material, if mentioned
              monthly_bill: "the callee's monthly electricity bill, as said"
              decision_maker: who decides on the house
            """)
        #expect(campaign.analysisFields == [
            AnalysisField(name: "roof_type", description: "the roof's material, if mentioned"),
            AnalysisField(name: "monthly_bill", description: "the callee's monthly electricity bill, as said"),
            AnalysisField(name: "decision_maker", description: "who decides on the house"),
        ])
    }

    @Test func aMissingRequiredKeyIsNamed() throws {
        let project = try ScratchProject()
        let text = ScratchProject.valid.replacingOccurrences(of: "dial: PJSIP/{phone}@trunk\n", with: "")
        #expect(throws: CampaignFileError(file: project.campaignPath, line: 1, field: "dial", message: "is missing")) { try project.parse(text) }
    }
}
