import CampaignCore
import CampaignStore
import ChatCompletions
@testable import Conversation
import Foundation
import GRDB
import Logging
import ProviderDoubles
import TestSupport
import Testing

@testable import CampaignApp

/// `cex report analyze` without the command line: stored calls analysed again by a model.
@Suite(.timeLimit(.minutes(1))) struct CallAnalysisRerunTests {
    @Test func storedCallsGetTheModelsAnalysisAndAFailureKeepsTheOldOne() async throws {
        let fixture = try CampaignFixture(leads: [("+12125550101", "interested"), ("+12125550102", "interested")])
        let session = try fixture.session()
        _ = try session.importLeads()
        let leads = try fixture.rows("SELECT id FROM lead ORDER BY id").map { $0["id"] as Int64 }
        var attempts: [UUID] = []
        for (index, lead) in leads.enumerated() {
            guard case .started(let attempt) = try fixture.store.beginAttempt(leadID: lead, now: Date(), channel: { "PJSIP/\($0.e164)@trunk" }) else {
                Issue.record("no attempt")
                return
            }
            var record = CallRecord(callID: attempt.id, template: "solar-assessment", startedAt: Date(timeIntervalSince1970: 1_784_000_000))
            record.turns = [.init(speaker: .caller, text: index == 0 ? "it's too expensive" : "maybe", startMs: 0, endMs: 900, interrupted: false, heard: nil,
                timeline: nil, analysis: nil)]
            record.outcome = .notInterested
            record.analysis = LexiconAnalyzer(template: try PitchTemplate.load(path: session.campaign.template)).analyze(call: record)
            try fixture.store.saveCallRecord(
                attempt.id, json: String(decoding: try record.json(), as: UTF8.self), summary: StoreRecordSink.summary(of: record), finished: true)
            attempts.append(attempt.id)
        }
        let server = FakeChatServer(apiKey: "sk-test-key-0000000000000000000000")
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let answer = #"{"sentiment":{"label":"negative","score":-0.6},"objective":"book a free home energy assessment","motive":"finds it too expensive","objections":["price"],"outcome":"not_interested","callback_time":null,"summary":"Said the price is too high.","custom":{"monthly_bill":"about $180","roof_type":""}}"#
        server.enqueue(.stream(FakeChatServer.chunks(text: answer)), .status(500, type: "server_error", code: nil, message: "The server had an error"))
        var client = ChatCompletionsClient(
            endpoint: ChatEndpoint(baseURL: base, apiKey: "sk-test-key-0000000000000000000000", model: "gpt-4o"), logger: Logger(label: "test"))
        client.retry = ChatRetryPolicy(maxRetries: 0)
        let analyzer = LLMAnalyzer(
            template: try PitchTemplate.load(path: session.campaign.template), client: client,
            customFields: ["monthly_bill": "the monthly electricity bill", "roof_type": "the roof's material"])
        let result = try await CallAnalysisRerun.run(store: fixture.store, campaignID: session.campaignID, analyzer: analyzer, since: nil, logger: Logger(label: "test"))
        #expect(result == .init(analysed: 1, failed: 1))
        let first = try #require(try fixture.store.callRecord(attempts[0]))
        #expect(first.summary.sentimentLabel == "negative" && first.summary.motive == "finds it too expensive" && first.summary.objections == ["price"])
        // The campaign's own fields: what was said is kept; "" (not said) is not.
        #expect(first.summary.custom == ["monthly_bill": "about $180"])
        #expect(try CallRecord.decode(Data(first.json.utf8)).analysis?.summary == "Said the price is too high.")
        // The second call's analysis is the one it had.
        let second = try #require(try fixture.store.callRecord(attempts[1]))
        #expect(second.summary.motive == "not interested" && second.summary.objections.isEmpty)
        #expect(server.requests.count == 2)
    }
}
