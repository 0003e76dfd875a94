import CampaignStore
import ChatCompletions
import Conversation
import Foundation
import Logging

/// `cex report analyze`: the model's post-call analysis run again over stored transcripts (after
/// a model change, or for calls made with the lexicon only). Each record gets the new analysis
/// and its report columns; the call's own outcome stays.
public enum CallAnalysisRerun {
    public struct Result: Sendable, Hashable {
        public var analysed = 0
        /// Records the model could not analyse; they keep their analysis.
        public var failed = 0
    }

    public static func run(
        store: CampaignStore, campaignID: Int64, analyzer: LLMAnalyzer, since: Date?, logger: Logger, progress: (Result) -> Void = { _ in }
    ) async throws -> Result {
        var result = Result()
        for (attemptID, json, zones) in try store.finishedCallRecords(campaignID: campaignID, since: since) {
            var log = logger
            log[metadataKey: "call.id"] = "\(attemptID)"
            guard var record = try? CallRecord.decode(Data(json.utf8)) else {
                log.warning("a stored call record cannot be read; skipped")
                result.failed += 1
                continue
            }
            let zone = zones.first.flatMap(TimeZone.init(identifier:)) ?? .gmt
            do {
                record.analysis = try await analyzer.analyze(record, timeZone: zone)
                let text = String(decoding: try record.json(), as: UTF8.self)
                try store.saveCallRecord(attemptID, json: text, summary: StoreRecordSink.summary(of: record), finished: true)
                result.analysed += 1
            } catch {
                log.warning("analysis failed; the record keeps its analysis", metadata: ["error": "\(error)"])
                result.failed += 1
            }
            progress(result)
        }
        return result
    }
}
