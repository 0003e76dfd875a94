import CampaignCore
import CampaignStore
import Conversation
import Foundation
import Logging
import NIOCore
import PBXSimulator
import TestSupport
import Testing

@testable import CampaignApp

/// The preflight, the template preview, and the store's answer to the engine's "whose call is this?".
@Suite struct CampaignCheckTests {
    /// Monday 13 July 2026, 14:00 in New York (11:00 in Los Angeles).
    let now = date("2026-07-13T18:00:00Z")

    func check(_ fixture: CampaignFixture, secret: String, pbxSecret: String) async throws -> CampaignCheck.Report {
        let port = PortWaiter()
        let pbx = SimulatedAsterisk(
            configuration: .init(
                host: "127.0.0.1", port: 0, users: [.init(username: "cex", secret: pbxSecret)], contexts: [:], directory: [:],
                defaultBehaviour: .unallocated, authenticationFailureDelay: .milliseconds(10), onListening: { port.set($0.port) }),
            logger: Logger(label: "test"))
        return try await withThrowingTaskGroup(of: CampaignCheck.Report?.self) { group in
            group.addTask {
                try await pbx.run()
                return nil
            }
            var check = CampaignCheck(session: try fixture.session(), now: self.now)
            check.ami = ("127.0.0.1", try await port.wait())
            check.secret = secret
            let run = check
            group.addTask { await run.run() }
            var report: CampaignCheck.Report?
            while report == nil, let next = try await group.next() { report = next }
            group.cancelAll()
            return report!
        }
    }

    @Test func aGoodCampaignPassesAndCountsWhoCanBeDialledByZone() async throws {
        let fixture = try CampaignFixture(
            leads: [("212-555-0101", "interested"), ("212-555-0102", "busy"), ("213-555-0103", "busy"), ("not a number", "busy")],
            window: "{start: \"12:00\", end: \"20:00\"}")
        let report = try await self.check(fixture, secret: "s3cret", pbxSecret: "s3cret")
        #expect(report.passed, "\(report.items)")
        let leads = try #require(report.items.first { $0.subject.hasSuffix("leads.csv") })
        #expect(leads.status == .warning)
        #expect(leads.detail.hasPrefix("3 new leads, 0 already in the campaign, 1 rejected (first: line 5, phone:"), "\(leads.detail)")
        #expect(report.items.contains { $0.subject.hasPrefix("AMI") && $0.status == .ok && $0.detail == "login accepted for cex" })
        // 14:00 in New York is inside 12:00–20:00; 11:00 in Los Angeles is not yet, but will be today.
        #expect(Set(report.dialable) == [
            .init(zones: "America/New_York", now: 2, next24Hours: 2), .init(zones: "America/Los_Angeles", now: 0, next24Hours: 1),
        ])
        // Nothing was stored.
        #expect(try fixture.store.phones(campaignID: try fixture.session().campaignID).isEmpty)
    }

    @Test func aRefusedLoginFailsTheCheck() async throws {
        let fixture = try CampaignFixture(leads: [("212-555-0101", "interested")])
        let report = try await self.check(fixture, secret: "wrong", pbxSecret: "s3cret")
        #expect(!report.passed)
        let ami = try #require(report.items.first { $0.subject.hasPrefix("AMI") })
        #expect(ami.status == .failed)
        #expect(!ami.detail.contains("wrong"))
    }

    @Test func theCheckNamesTheAnalysisFieldsAndWarnsThatTheScriptCannotFillThem() throws {
        let fields = "analysis_fields: {roof_type: the roof's material, monthly_bill: the monthly bill}"
        let scripted = CampaignCheck(session: try CampaignFixture(leads: [("212-555-0101", "interested")], extra: fields).session(), now: self.now)
        let detail = scripted.checkProviders(environment: [:]).detail
        #expect(detail.hasSuffix("; analysis fields roof_type, monthly_bill (the script cannot fill them: only `cex report analyze` will)"), "\(detail)")
        let model = CampaignCheck(
            session: try CampaignFixture(leads: [("212-555-0101", "interested")], extra: fields + "\nproviders: {language: openai}").session(),
            now: self.now)
        let item = model.checkProviders(environment: ["OPENAI_BASE_URL": "http://127.0.0.1:9/v1"])
        #expect(item.status == .ok && item.detail.hasSuffix("; analysis fields roof_type, monthly_bill"), "\(item.detail)")
    }

    @Test func thePreviewRendersOneLeadAndRefusesALeadWithoutAVariable() throws {
        let fixture = try CampaignFixture(leads: [("212-555-0101", "interested")])
        let template = try PitchTemplate.load(path: CampaignFixture.repository.appendingPathComponent("templates/solar-assessment.yaml").path)
        let leads = fixture.directory.appendingPathComponent("leads.csv").path
        #expect(TemplatePreview.leadReference("a/b.csv:2")! == ("a/b.csv", 2))
        #expect(TemplatePreview.leadReference("a.csv:1") == nil && TemplatePreview.leadReference("a.csv") == nil)
        let preview = try TemplatePreview.render(template, lead: try TemplatePreview.lead(file: leads, line: 2))
        #expect(preview.opening.hasPrefix("Hi Lead1, this is Alex from Bright Solar. I'm an automated assistant"))
        #expect(preview.pitch.first?.contains("Springfield") == true)
        #expect(throws: TemplatePreview.PreviewError.self) { try TemplatePreview.lead(file: leads, line: 3) }
        #expect(throws: TemplateError.self) { try TemplatePreview.render(template, lead: ["city": "X"]) }
        // An empty value is as good as none: the import rejects the lead, so the preview refuses it.
        #expect(throws: TemplateError(file: "", line: nil, field: "first_name", message: "is empty")) {
            try TemplatePreview.render(template, lead: ["first_name": " ", "city": "X"])
        }
    }

    @Test func theEngineIsGivenOnlyUnsettledAttemptsOfThisStore() async throws {
        let fixture = try CampaignFixture(leads: [("212-555-0101", "interested")])
        let session = try fixture.session()
        _ = try session.importLeads()
        let resolver = StoreCallResolver(store: fixture.store, logger: Logger(label: "test"), now: { self.now })
        let lead = try #require(try fixture.store.dueLeads(campaignID: session.campaignID, zones: ["America/New_York"], now: self.now, limit: 1).first)
        guard case .started(let attempt) = try fixture.store.beginAttempt(leadID: lead.id, now: self.now, channel: { "PJSIP/\($0.e164)@t" }) else {
            Issue.record("not started")
            return
        }
        let resolved = try #require(await resolver.resolve(callID: attempt.id))
        #expect(resolved.context.lead["first_name"] == "Lead1" && resolved.context.lead["city"] == "Springfield")
        #expect(resolved.context.timeZone.identifier == "America/New_York")
        #expect(resolved.template.name == "solar-assessment")
        #expect(await resolver.resolve(callID: UUID()) == nil)
        _ = try fixture.store.settle(attempt.id, Settlement(outcome: .busy), now: self.now, policy: .standard, window: .legal)
        #expect(await resolver.resolve(callID: attempt.id) == nil)
    }
}
