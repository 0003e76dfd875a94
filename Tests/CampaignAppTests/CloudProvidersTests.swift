import CampaignCore
import ChatCompletions
import Conversation
import Foundation
import JSON
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PBXSimulator
import ProviderDoubles
import ServiceLifecycle
import Speech
import TestSupport
import Testing

@testable import CampaignApp

/// Keeps every record the engine writes.
final class RecordKeeper: CallRecordSink {
    let finished = NIOLockedValueBox<[CallRecord]>([])
    let updates = NIOLockedValueBox<[CallRecord]>([])

    func update(_ record: CallRecord) async { self.updates.withLockedValue { $0.append(record) } }
    func finish(_ record: CallRecord) async { self.finished.withLockedValue { $0.append(record) } }
}

/// Whole calls through the engine with Deepgram and an OpenAI-compatible model as providers,
/// both loopback doubles reached through the environment variables a deployment sets, and a
/// simulated caller speaking flite lines over AudioSocket.
@Suite(.serialized, .timeLimit(.minutes(2))) struct CloudProvidersTests {
    static let deepgramKey = "dg-secret-4f9a0c1e2b3d4c5e6f708192a3b4c5d6"
    static let openAIKey = "sk-secret-9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
    static var templates: URL { EngineServiceTests.templates }

    struct Run {
        var record: CallRecord
        var recording: CallerRecording
        var logs: [String]
        var chat: FakeChatServer
        var deepgram: FakeDeepgramServer
    }

    func call(
        settings: ProviderSettings, replies: [FakeChatServer.Reply], caller lines: [String], analysisFields: [String: String] = [:],
        tls authority: TestCertificateAuthority? = nil, trusting: [String] = ["DEEPGRAM_CA_FILE", "OPENAI_CA_FILE"]
    ) async throws -> Run {
        let deepgram = FakeDeepgramServer(apiKey: Self.deepgramKey)
        let chat = FakeChatServer(apiKey: Self.openAIKey)
        let deepgramRoot = try await deepgram.start(tls: try authority?.serverContext())
        let chatRoot = try await chat.start(tls: try authority?.serverContext())
        for line in lines { deepgram.script(line) }
        for reply in replies { chat.enqueue(reply) }
        let logs = LogCapture()
        let logger = logs.logger(level: .debug)
        let port = PortWaiter()
        var configuration = EngineService.Configuration()
        configuration.port = 0
        configuration.maximumCalls = 1
        configuration.drain = .zero
        configuration.onListening = { port.set($0.port) }
        configuration.providers = settings
        configuration.environment = [
            "DEEPGRAM_API_KEY": Self.deepgramKey, "DEEPGRAM_STT_DOMAIN": deepgramRoot.absoluteString,
            "OPENAI_API_KEY": Self.openAIKey, "OPENAI_BASE_URL": chatRoot, "OPENAI_MODEL": "gpt-4o",
        ]
        let authorityFile = FileManager.default.temporaryDirectory.appendingPathComponent("cex-ca-\(UUID().uuidString).pem")
        defer { try? FileManager.default.removeItem(at: authorityFile) }
        if let authority {
            try authority.certificatePEM.write(to: authorityFile, atomically: true, encoding: .utf8)
            for name in trusting { configuration.environment[name] = authorityFile.path }
        }
        let template = try PitchTemplate.load(path: Self.templates.appendingPathComponent("solar-assessment.yaml").path)
        let sink = RecordKeeper()
        let service = try EngineService(
            configuration: configuration,
            resolver: AnyCallResolver(
                template: template, lead: ["first_name": "Ana", "city": "Austin"], timeZone: TimeZone(identifier: "America/Chicago")!,
                analysisFields: analysisFields),
            sink: sink, logger: logger)
        var steps: [CallerScript.Step] = []
        for line in lines { steps += [.waitForPause(.milliseconds(900)), .say(try await FliteSynthesizer().render(line))] }
        let script = CallerScript(steps: steps + [.pause(.seconds(20), sendSilence: true)], maximumDuration: .seconds(60))
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let recording = try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let recording = await SimulatedCaller(host: "127.0.0.1", port: try await port.wait(), callID: UUID(), script: script).run()
            try await eventually { !sink.finished.withLockedValue { $0.isEmpty } }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return recording
        }
        // The engine stopped: every speak socket it kept was closed as Deepgram asks.
        try await eventually { deepgram.speaks.allSatisfy { $0.messages.last == "Close" } }
        await deepgram.stop()
        await chat.stop()
        let record = try #require(sink.finished.withLockedValue { $0.first })
        return Run(record: record, recording: recording, logs: logs.all, chat: chat, deepgram: deepgram)
    }

    static let cloud = ProviderSettings(speech: .deepgram, language: .openai, firstToken: .milliseconds(800))

    /// The model's post-call analysis, asked for once the call ends.
    static let analysis = FakeChatServer.Reply.stream(FakeChatServer.chunks(text: """
        {"sentiment":{"label":"positive","score":0.8},"objective":"book a free home energy assessment","motive":"wants lower bills",\
        "objections":[],"outcome":"interested","callback_time":null,"summary":"Asked the price, then booked the assessment.",\
        "custom":{"roof_type":"slate"}}
        """, size: 9))

    /// Over TLS, as the services are reached: each provider trusts the authority its
    /// `…_CA_FILE` names.
    @Test func aCallRunsOnDeepgramAndTheModelAndLeaksNoKey() async throws {
        let run = try await self.call(
            settings: Self.cloud,
            replies: [
                .stream(FakeChatServer.chunks(text: "The assessment is free, with no obligation. Shall I book it for you?", size: 6)),
                .stream(FakeChatServer.chunks(toolCalls: [ToolCall(id: "c1", name: "end_call", arguments: #"{"outcome":"interested"}"#)])),
                Self.analysis,
            ],
            caller: ["how much does it cost", "yes please book it"], analysisFields: ["roof_type": "the roof's material, if mentioned"],
            tls: try TestCertificateAuthority())
        let record = run.record
        let json = String(decoding: try record.json(), as: UTF8.self)
        #expect(run.recording.ending == .engineHungUp, "\(json)")
        #expect(record.outcome == .interested, "\(json)")
        #expect(record.failovers == nil, "\(json)")
        let said = record.turns.map { "\($0.speaker.rawValue): \($0.text)" }
        #expect(said.contains("caller: how much does it cost") && said.contains("caller: yes please book it"), "\(said)")
        #expect(said.contains { $0.hasPrefix("agent: The assessment is free, with no obligation.") }, "\(said)")
        #expect(said.last?.hasPrefix("agent: Wonderful! Someone from Bright Solar will call you") == true, "\(said)")
        // The answer's timeline says what of its start the model and the voice took, at the wire.
        let asked = try #require(record.turns.first { $0.speaker == .caller && $0.text == "how much does it cost" }?.timeline)
        let (model, voice) = (try #require(asked.llmTimeToFirstTokenMs), try #require(asked.ttsTimeToFirstByteMs))
        // (Each duration and offset is cut to whole milliseconds.)
        #expect(model >= 0 && voice >= 0 && model + voice <= asked.firstFrameOutMs! - asked.endpointMs! + 2, "\(json)")
        // The model saw the answer as the caller heard it, then the caller's yes; then it analysed the call.
        #expect(run.chat.requests.count == 3)
        #expect(record.analysis?.summary == "Asked the price, then booked the assessment." && record.analysis?.motive == "wants lower bills")
        // The campaign's own field was asked for in the strict schema, and kept.
        #expect(record.analysis?.custom == ["roof_type": "slate"])
        if run.chat.requests.count == 3 {
            let schema = run.chat.requests[2].body["response_format"]?["json_schema"]?["schema"]
            #expect(schema?["properties"]?["custom"]?["required"] == ["roof_type"], "\(String(describing: schema))")
        }
        if run.chat.requests.count == 3, case .array(let messages)? = run.chat.requests[1].body["messages"] {
            #expect(messages.suffix(2).map { $0["role"]?.string } == ["assistant", "user"])
        }
        // Deepgram heard the call, spoke every line, and was told when the call ended.
        #expect(run.deepgram.listens.first?.controls.last == "CloseStream")
        #expect(run.deepgram.speaks.flatMap(\.messages).contains { $0.hasPrefix("Speak:The assessment is free") })
        // No key in any log line or in the record.
        for secret in [Self.deepgramKey, Self.openAIKey] {
            #expect(!run.logs.contains { $0.contains(secret) } && !json.contains(secret), "\(run.logs.filter { $0.contains(secret) }.prefix(3))")
        }
        #expect(run.logs.contains { $0.contains("speech deepgram nova-3/aura-2-thalia-en, language openai gpt-4o") })
    }

    @Test func aModelWhoseCertificateIsNotTrustedFailsOverAtOnceAndTheReasonSaysSo() async throws {
        // Deepgram's authority is named in the environment; the model's is not.
        let run = try await self.call(
            settings: Self.cloud, replies: [], caller: ["how much does it cost", "please remove me from your list"], tls: try TestCertificateAuthority(),
            trusting: ["DEEPGRAM_CA_FILE"])
        let record = run.record
        let json = String(decoding: try record.json(), as: UTF8.self)
        #expect(run.chat.requests.isEmpty)
        // Not retried, not waited for: the turn's failover names TLS, and so does the analysis's.
        #expect(record.failovers?.map(\.role) == ["llm", "analysis"], "\(json)")
        #expect(record.failovers?.allSatisfy { $0.reason.contains("TLS handshake failed: CERTIFICATE_VERIFY_FAILED") } == true, "\(json)")
        let answer = try #require(record.turns.first { $0.speaker == .agent && $0.text.contains("One moment.") }, "\(json)")
        #expect(answer.text.hasPrefix("One moment. The assessment is completely free"), "\(json)")
        #expect(record.outcome == .doNotCall && record.endedBy == "agent", "\(json)")
        // Deepgram, trusted, heard and spoke the whole call over wss.
        #expect(run.deepgram.listens.first?.controls.last == "CloseStream" && record.failovers?.contains { $0.role == "stt" || $0.role == "tts" } == false)
    }

    @Test func aCertificateAuthorityFileMustHoldCertificates() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cex-ca-\(UUID().uuidString).pem")
        try "not a certificate\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: EngineProviders.MissingCredential.self) { try ProviderHTTP.authorityFile("OPENAI_CA_FILE", environment: ["OPENAI_CA_FILE": file.path]) }
        #expect(throws: EngineProviders.MissingCredential.self) { try ProviderHTTP.authorityFile("OPENAI_CA_FILE", environment: ["OPENAI_CA_FILE": "/nonexistent.pem"]) }
        #expect(try ProviderHTTP.authorityFile("OPENAI_CA_FILE", environment: [:]) == nil)
        let pem = FileManager.default.temporaryDirectory.appendingPathComponent("cex-ca-\(UUID().uuidString).pem")
        try TestCertificateAuthority().certificatePEM.write(to: pem, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: pem) }
        #expect(try ProviderHTTP.authorityFile("OPENAI_CA_FILE", environment: ["OPENAI_CA_FILE": pem.path]) == pem.path)
    }

    @Test func aStalledModelIsHeardAsOneFillerLineAndTheScriptFinishesTheCall() async throws {
        // The model stalls on the first turn, then refuses the post-call analysis.
        let refused = FakeChatServer.Reply.status(400, type: "invalid_request_error", code: "context_length_exceeded", message: "Too long.")
        let run = try await self.call(
            settings: Self.cloud, replies: [.stall([FakeChatServer.chunk(delta: .init(role: "assistant", content: ""))]), refused],
            caller: ["how much does it cost", "yes please book it", "please remove me from your list"])
        let record = run.record
        let json = String(decoding: try record.json(), as: UTF8.self)
        let failover = try #require(record.failovers?.first, "\(json)")
        #expect(failover.role == "llm" && failover.fallback == "scripted" && failover.reason == "no reply within 800 ms")
        // Heard: one filler line, then the script's answer to the same question.
        let answer = try #require(record.turns.first { $0.speaker == .agent && $0.text.contains("One moment.") }, "\(json)")
        #expect(answer.text.hasPrefix("One moment. The assessment is completely free"), "\(json)")
        // The script leads the rest of the call: the model is not asked again (only to analyse it), and the agent ends the call.
        #expect(run.chat.requests.count == 2 && run.chat.requests[1].body["response_format"] != nil)
        #expect(record.endedBy == "agent" && run.recording.ending == .engineHungUp && record.outcome == .doNotCall, "\(json)")
        #expect(record.turns.contains { $0.speaker == .agent && $0.text.hasPrefix("We're helping homeowners in Austin") }, "\(json)")
        // The refused analysis is a second failover; the lexicon's analysis stands, with the call's own outcome.
        #expect(record.failovers?.count == 2, "\(json)")
        let analysisFailover = try #require(record.failovers?.last, "\(json)")
        #expect(analysisFailover.role == "analysis" && analysisFailover.fallback == "lexicon" && analysisFailover.reason.contains("HTTP 400"), "\(json)")
        #expect(record.analysis?.outcome == .doNotCall && record.analysis?.summary.isEmpty == false, "\(json)")
    }

    @Test func missingKeysAreNamedAndALocalServerNeedsNone() throws {
        let offline = PocketSphinxRecognizer(configuration: .init(maximumSessions: 1))
        let voice = EspeakSynthesizer()
        let logger = Logger(label: "test")
        func make(_ settings: ProviderSettings, _ environment: [String: String]) throws -> EngineProviders {
            try EngineProviders.make(settings, environment: environment, offlineRecognizer: offline, offlineSynthesizer: voice, logger: logger)
        }
        #expect(throws: EngineProviders.MissingCredential.self) { try make(ProviderSettings(speech: .deepgram), [:]) }
        do {
            _ = try make(ProviderSettings(language: .openai), [:])
        } catch {
            #expect("\(error)".contains("OPENAI_API_KEY"))
        }
        let local = try make(ProviderSettings(language: .openai, llmModel: "llama3.1"), ["OPENAI_BASE_URL": "http://localhost:11434/v1"])
        #expect(local.summary == "speech offline, language openai llama3.1")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cex-key-\(UUID().uuidString)")
        try "dg-from-a-file\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try make(ProviderSettings(speech: .deepgram, sttModel: "nova-2-phonecall"), ["DEEPGRAM_API_KEY_FILE": file.path])
        #expect(fromFile.summary == "speech deepgram nova-2-phonecall/aura-2-thalia-en, language scripted" && fromFile.fallbackRecognizer != nil)
    }
}

/// `campaign check` names a cloud provider's missing key before any call is made.
@Suite struct ProviderCheckTests {
    @Test func theCheckNamesAMissingKeyAndPassesWithIt() throws {
        let fixture = try CampaignFixture(leads: [("+12125550101", "interested")], extra: "providers: {speech: deepgram, language: openai}")
        let check = CampaignCheck(session: try fixture.session())
        let missing = check.checkProviders(environment: [:])
        #expect(missing.status == .failed && missing.detail.contains("DEEPGRAM_API_KEY"))
        let present = check.checkProviders(environment: ["DEEPGRAM_API_KEY": "dg-x", "OPENAI_API_KEY": "sk-x"])
        #expect(present.status == .ok && present.detail.hasPrefix("speech deepgram nova-3/aura-2-thalia-en, language openai gpt-4o"))
        #expect(!present.detail.contains("dg-x") && !missing.detail.contains("dg-x"))
    }
}
