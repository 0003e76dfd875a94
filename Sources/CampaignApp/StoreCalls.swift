import CampaignCore
import CampaignStore
import Conversation
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Resolves AudioSocket UUIDs through the campaign store: the UUID must be an attempt that is
/// not settled yet and not admitted before (one connection per attempt); its lead's record
/// gives the template variables. Anything else is refused.
public final class StoreCallResolver: CallResolver {
    let store: CampaignStore
    let logger: Logger
    let now: @Sendable () -> Date
    private let templates = NIOLockedValueBox<[String: PitchTemplate]>([:])

    /// `now` is the clock call records start on (the runner's, so answer and first-audio times compare).
    public init(store: CampaignStore, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.logger = logger
        self.now = now
    }

    public func resolve(callID: UUID) async -> ResolvedCall? {
        do {
            guard let target = try self.store.admitCall(callID) else { return nil }
            let template = try self.template(at: target.template)
            let columns = try LeadColumns(header: target.header)
            let lead = columns.fields(of: target.values)
            let zone = target.timeZones.first.flatMap(TimeZone.init(identifier:)) ?? .current
            return ResolvedCall(
                context: CallContext(callID: callID, lead: lead, timeZone: zone, startedAt: self.now()), template: template,
                analysisFields: AnalysisField.descriptions(target.analysisFields))
        } catch {
            self.logger.error("call cannot be resolved", metadata: ["call.id": "\(callID)", "error": "\(error)"])
            return nil
        }
    }

    func template(at path: String) throws -> PitchTemplate {
        if let cached = self.templates.withLockedValue({ $0[path] }) { return cached }
        let template = try PitchTemplate.load(path: path)
        self.templates.withLockedValue { $0[path] = template }
        return template
    }
}

/// Keeps call records in the store as the call goes. An opt-out goes on the do-not-call list
/// the moment the engine records it, not when the call is settled.
///
/// The writes run in order on a queue of their own: a call's loop never waits for the disk,
/// even while another process holds SQLite's write lock (a bulk import, say). `finish` returns
/// once its record, and every update before it, is written.
public struct StoreRecordSink: CallRecordSink {
    let store: CampaignStore
    let logger: Logger
    private let queue = DispatchQueue(label: "cex.call-records")

    public init(store: CampaignStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func update(_ record: CallRecord) async {
        self.queue.async { self.save(record, finished: false) }
    }

    public func finish(_ record: CallRecord) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.queue.async {
                self.save(record, finished: true)
                continuation.resume()
            }
        }
    }

    func save(_ record: CallRecord, finished: Bool) {
        do {
            if record.outcome == .doNotCall || record.actions.contains(.addToDoNotCall), let attempt = try self.store.attempt(record.callID) {
                try self.store.addDoNotCall([attempt.phone], source: "opt-out in call \(record.callID.uuidString.lowercased())")
            }
            let json = String(decoding: try record.json(), as: UTF8.self)
            try self.store.saveCallRecord(record.callID, json: json, summary: Self.summary(of: record), finished: finished)
        } catch {
            self.logger.error("call record not saved", metadata: ["call.id": "\(record.callID)", "error": "\(error)"])
        }
    }

    static func summary(of record: CallRecord) -> CallRecordSummary {
        let analysis = record.analysis
        let firstAudio = record.firstAgentAudioMs.map { record.startedAt.addingTimeInterval(Double($0) / 1000) }
        return CallRecordSummary(
            outcome: (record.outcome ?? analysis?.outcome)?.rawValue, sentimentLabel: analysis?.sentimentLabel, sentimentScore: analysis?.sentimentScore,
            objective: analysis?.objective, motive: analysis?.motive, objections: analysis?.objections ?? [],
            callbackAt: analysis?.callbackTime, summary: analysis?.summary,
            talkSeconds: record.endedAt.map { $0.timeIntervalSince(record.startedAt) }, firstAudioAt: firstAudio,
            // "" is the model's word for "not said".
            custom: analysis?.custom?.filter { !$0.value.isEmpty } ?? [:])
    }
}
