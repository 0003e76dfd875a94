import Foundation
import NIOCore
import Synchronization

/// The engine's counters and histograms, in Prometheus's text format (`cex engine serve
/// --metrics`): calls, turns, outcomes, reply latency and what of it the cloud providers took,
/// outbound frame lateness, underruns.
public final class EngineMetrics: ConversationObserver {
    struct Histogram {
        /// Upper bounds, seconds.
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            self.counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ seconds: Double) {
            if let index = self.bounds.firstIndex(where: { seconds <= $0 }) { self.counts[index] += 1 }
            self.sum += seconds
            self.count += 1
        }

        func lines(_ name: String) -> [String] {
            var cumulative = 0
            var lines: [String] = []
            for (bound, count) in zip(self.bounds, self.counts) {
                cumulative += count
                lines.append("\(name)_bucket{le=\"\(bound)\"} \(cumulative)")
            }
            lines.append("\(name)_bucket{le=\"+Inf\"} \(self.count)")
            lines.append("\(name)_sum \(self.sum)")
            lines.append("\(name)_count \(self.count)")
            return lines
        }
    }

    private struct State {
        var callsRefused = 0
        var callsStarted = 0
        var callsEnded = 0
        var callerTurns = 0
        var bargeIns = 0
        var underruns = 0
        var lateFrames = 0
        var outcomes: [String: Int] = [:]
        var replyLatency = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
        var llmTimeToFirstToken = Histogram(bounds: Self.providerBounds)
        var ttsTimeToFirstByte = Histogram(bounds: Self.providerBounds)
        static let providerBounds = [0.001, 0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5]
        var frameLateness = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08])
    }

    private let state = Mutex(State())

    public init() {}

    public func callStarted() { self.state.withLock { $0.callsStarted += 1 } }

    /// A connection refused because the engine was at its call limit.
    public func callRefusedAtLimit() { self.state.withLock { $0.callsRefused += 1 } }

    public func replyStarted(after latency: Duration, providers: ProviderTimes) {
        func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
        self.state.withLock { state in
            state.replyLatency.observe(seconds(latency))
            if let time = providers.llmTimeToFirstToken { state.llmTimeToFirstToken.observe(seconds(time)) }
            if let time = providers.ttsTimeToFirstByte { state.ttsTimeToFirstByte.observe(seconds(time)) }
        }
    }

    public func callEnded(_ record: CallRecord) {
        self.state.withLock { state in
            state.callsEnded += 1
            state.callerTurns += record.turns.filter { $0.speaker == .caller }.count
            state.bargeIns += record.turns.filter(\.interrupted).count
            state.underruns += record.underruns
            state.lateFrames += record.lateFrames
            state.outcomes[record.outcome?.rawValue ?? "none", default: 0] += 1
        }
    }

    /// For `AudioSocketServer.Configuration.onFrameLateness`.
    public func frameLateness(_ amount: TimeAmount) {
        self.state.withLock { $0.frameLateness.observe(Double(amount.nanoseconds) / 1e9) }
    }

    /// The exposition text.
    public func render() -> String {
        let state = self.state.withLock { $0 }
        var lines = [
            "# HELP cex_calls_started_total Calls the engine admitted.", "# TYPE cex_calls_started_total counter",
            "cex_calls_started_total \(state.callsStarted)",
            "# HELP cex_calls_refused_total Connections refused because the engine was at its call limit.",
            "# TYPE cex_calls_refused_total counter", "cex_calls_refused_total \(state.callsRefused)",
            "# HELP cex_calls_active Calls in progress.", "# TYPE cex_calls_active gauge",
            "cex_calls_active \(state.callsStarted - state.callsEnded)",
            "# HELP cex_calls_ended_total Calls ended, by outcome.", "# TYPE cex_calls_ended_total counter",
        ]
        for outcome in state.outcomes.keys.sorted() {
            lines.append("cex_calls_ended_total{outcome=\"\(outcome)\"} \(state.outcomes[outcome]!)")
        }
        lines += [
            "# HELP cex_caller_turns_total Caller turns in ended calls.", "# TYPE cex_caller_turns_total counter",
            "cex_caller_turns_total \(state.callerTurns)",
            "# HELP cex_agent_interruptions_total Agent lines cut by the caller or the call's end.", "# TYPE cex_agent_interruptions_total counter",
            "cex_agent_interruptions_total \(state.bargeIns)",
            "# HELP cex_audio_underruns_total Silent frames sent while a reply was still being made.", "# TYPE cex_audio_underruns_total counter",
            "cex_audio_underruns_total \(state.underruns)",
            "# HELP cex_audio_late_frames_total Frames sent more than 10 ms after their slot.", "# TYPE cex_audio_late_frames_total counter",
            "cex_audio_late_frames_total \(state.lateFrames)",
            "# HELP cex_reply_latency_seconds End of the caller's turn reaching the engine to the reply's first frame written.",
            "# TYPE cex_reply_latency_seconds histogram",
        ]
        lines += state.replyLatency.lines("cex_reply_latency_seconds")
        lines += [
            "# HELP cex_llm_time_to_first_token_seconds The model's time to a reply's first token: request's last byte out to the read that brought it.",
            "# TYPE cex_llm_time_to_first_token_seconds histogram",
        ]
        lines += state.llmTimeToFirstToken.lines("cex_llm_time_to_first_token_seconds")
        lines += [
            "# HELP cex_tts_time_to_first_byte_seconds The speech service's time to a reply's first audio: request's last byte out to the read that brought it.",
            "# TYPE cex_tts_time_to_first_byte_seconds histogram",
        ]
        lines += state.ttsTimeToFirstByte.lines("cex_tts_time_to_first_byte_seconds")
        lines += [
            "# HELP cex_frame_lateness_seconds How late each 20 ms slot's last frame was written, per event loop.",
            "# TYPE cex_frame_lateness_seconds histogram",
        ]
        lines += state.frameLateness.lines("cex_frame_lateness_seconds")
        return lines.joined(separator: "\n") + "\n"
    }
}
