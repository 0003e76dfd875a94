import Foundation

/// Everything one call left behind: turns with what was heard, keys pressed, the per-turn
/// latency timeline, live and post-call analysis, the outcome and the policy's actions.
/// Offsets are milliseconds since the call connected, all on one monotonic clock.
public struct CallRecord: Sendable, Hashable, Codable {
    public struct Turn: Sendable, Hashable, Codable {
        public var speaker: DialogueTurn.Speaker
        /// What was said (agent: the whole line meant to be spoken).
        public var text: String
        public var startMs: Int
        public var endMs: Int?
        /// The agent was cut off by the caller.
        public var interrupted: Bool
        /// Agent turns: the words that actually went out before the cut (all of them if not cut).
        public var heard: String?
        /// Caller turns: the latency of the agent's answer to this turn.
        public var timeline: Timeline?
        /// Caller turns: live analysis.
        public var analysis: TurnAnalysis?
    }

    /// Milliseconds since the call connected, for one caller turn and the reply to it.
    public struct Timeline: Sendable, Hashable, Codable {
        /// The caller's last voiced frame.
        public var speechEndMs: Int?
        /// The turn rules decided the caller was done.
        public var endpointMs: Int?
        /// The recogniser's final text for the turn arrived.
        public var sttFinalMs: Int?
        /// The policy's first reply text.
        public var policyFirstTextMs: Int?
        /// The synthesiser's first audio of the reply.
        public var ttsFirstAudioMs: Int?
        /// The reply's first audio frame went to Asterisk.
        public var firstFrameOutMs: Int?
        /// How long the reply waited on its cloud providers (durations, not offsets), each from
        /// the request's last byte out to the read that brought the answer: the model's time to
        /// its first token (retries included), the speech service's time to the first audio.
        /// Absent offline.
        public var llmTimeToFirstTokenMs: Int?
        public var ttsTimeToFirstByteMs: Int?
    }

    public struct Failover: Sendable, Hashable, Codable {
        public var role: String
        public var provider: String
        public var fallback: String
        public var reason: String
        public var atMs: Int
    }

    public struct KeyPress: Sendable, Hashable, Codable {
        public var digit: String
        public var atMs: Int
    }

    /// The opening (identification, the automated-call disclosure and how to opt out), as the
    /// caller heard it.
    public struct Disclosure: Sendable, Hashable, Codable {
        /// Every sample of the opening went out.
        public var heardInFull: Bool
        /// When its last sample went out, or when it stopped.
        public var endMs: Int
        /// Why it stopped short: `opt_out` (the caller opted out over it), `caller_hung_up`, `shutdown`.
        public var cutBy: String?
    }

    /// A message left on an answering machine (the template's `voicemail:`).
    public struct VoicemailMessage: Sendable, Hashable, Codable {
        /// When it started: after the record tone, or after the greeting and 1 s of quiet.
        public var startMs: Int
        /// What started it: `tone` or `quiet`.
        public var after: String
        /// When it ended; nil while it plays.
        public var endMs: Int?
        /// Every sample of it went out (the machine did not hang up first).
        public var complete: Bool?
    }

    public var callID: UUID
    public var template: String
    public var startedAt: Date
    public var endedAt: Date?
    public var turns: [Turn] = []
    public var dtmf: [KeyPress] = []
    public var actions: [PolicyAction] = []
    public var outcome: CallOutcome?
    /// Who ended the call: `agent`, `caller`, or an error.
    public var endedBy: String?
    /// When the first agent audio went out.
    public var firstAgentAudioMs: Int?
    /// How the opening went (nil until it has ended).
    public var disclosure: Disclosure?
    /// The message left on the answering machine, when one was.
    public var voicemailMessage: VoicemailMessage?
    public var analysis: CallAnalysis?
    /// Providers that failed during the call, and when (nil when none did).
    public var failovers: [Failover]?
    /// Outbound audio counters.
    public var framesSent = 0
    public var underruns = 0
    public var lateFrames = 0

    public init(callID: UUID, template: String, startedAt: Date) {
        self.callID = callID
        self.template = template
        self.startedAt = startedAt
    }

    /// Pretty, stable JSON (keys sorted, ISO 8601 dates).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    /// A record as `json()` wrote it.
    public static func decode(_ data: Data) throws -> CallRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(CallRecord.self, from: data)
    }
}

/// Where call records go as the call happens: the campaign store, files, or tests.
///
/// `update` is called after every turn, so a process that dies mid-call loses at most the
/// turn in progress; `finish` once, with the complete record. Both are called from the call's
/// event loop: they must not block (a sink that writes to disk does it on a queue of its own).
public protocol CallRecordSink: Sendable {
    func update(_ record: CallRecord) async
    func finish(_ record: CallRecord) async
}

/// Writes `<directory>/<call id>.json`, replaced atomically after every turn, in order on a
/// queue of its own. `finish` returns once its record, and every update before it, is written.
public struct JSONFileRecordSink: CallRecordSink {
    public var directory: URL
    private let queue = DispatchQueue(label: "cex.call-record-files")

    public init(directory: URL) {
        self.directory = directory
    }

    public func update(_ record: CallRecord) async {
        self.queue.async { self.write(record) }
    }

    public func finish(_ record: CallRecord) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.queue.async {
                self.write(record)
                continuation.resume()
            }
        }
    }

    private func write(_ record: CallRecord) {
        try? FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        guard let data = try? record.json() else { return }
        try? data.write(to: self.directory.appendingPathComponent("\(record.callID.uuidString.lowercased()).json"), options: .atomic)
    }
}
