import Foundation
import JSON

/// The query of a streaming `/v1/listen` request (the options the Deepgram SDKs send).
public struct ListenOptions: Sendable, Hashable {
    public var model: String
    public var language: String
    /// Raw 16-bit little-endian PCM at `sampleRate` (the rate is required whenever the encoding is named).
    public var sampleRate: Int
    public var interimResults: Bool
    /// Silence (ms) after which Deepgram marks `speech_final`; nil turns endpointing off.
    public var endpointingMs: Int?
    /// Gap (ms) after the last word that brings an `UtteranceEnd`; nil for none. Needs interim results.
    public var utteranceEndMs: Int?
    /// `SpeechStarted` events, for barge-in.
    public var vadEvents: Bool
    public var smartFormat: Bool
    /// Words to listen for (nova-3 `keyterm`).
    public var keyterms: [String]

    public init(
        model: String = "nova-3", language: String = "en-US", sampleRate: Int = 8000, interimResults: Bool = true, endpointingMs: Int? = 300,
        utteranceEndMs: Int? = 1000, vadEvents: Bool = true, smartFormat: Bool = true, keyterms: [String] = []
    ) {
        self.model = model
        self.language = language
        self.sampleRate = sampleRate
        self.interimResults = interimResults
        self.endpointingMs = endpointingMs
        self.utteranceEndMs = utteranceEndMs
        self.vadEvents = vadEvents
        self.smartFormat = smartFormat
        self.keyterms = keyterms
    }

    public var queryItems: [URLQueryItem] {
        var items = [
            URLQueryItem(name: "model", value: self.model), URLQueryItem(name: "language", value: self.language),
            URLQueryItem(name: "encoding", value: "linear16"), URLQueryItem(name: "sample_rate", value: "\(self.sampleRate)"),
            URLQueryItem(name: "channels", value: "1"), URLQueryItem(name: "interim_results", value: "\(self.interimResults)"),
            URLQueryItem(name: "endpointing", value: self.endpointingMs.map(String.init) ?? "false"),
            URLQueryItem(name: "vad_events", value: "\(self.vadEvents)"), URLQueryItem(name: "smart_format", value: "\(self.smartFormat)"),
        ]
        if let gap = self.utteranceEndMs, self.interimResults { items.append(URLQueryItem(name: "utterance_end_ms", value: "\(gap)")) }
        items += self.keyterms.prefix(100).map { URLQueryItem(name: "keyterm", value: $0) }
        return items
    }
}

/// What the client sends as text on a listen socket.
public enum ListenControl: String, Sendable, Hashable, CaseIterable {
    /// Keeps an idle socket open (no reply); Deepgram closes one with no traffic for 10 s.
    case keepAlive = "KeepAlive"
    /// Flushes what was heard so far: the results come back with `from_finalize`.
    case finalize = "Finalize"
    /// Ends the stream: the last results, a Metadata message, then close 1000.
    case closeStream = "CloseStream"

    public var json: String { #"{"type":"\#(self.rawValue)"}"# }

    /// The control message a text frame carries, nil if it is none.
    public init?(json: String) {
        guard let value = JSONReader.read(json.utf8), let type = value["type"]?.string else { return nil }
        self.init(rawValue: type)
    }
}

/// A transcript message of a listen socket.
public struct ListenResults: Sendable, Hashable {
    public var transcript: String
    public var confidence: Double
    /// Seconds from the start of the stream.
    public var start: Double
    public var duration: Double
    /// This span's text is settled (an interim result is replaced by a later one).
    public var isFinal: Bool
    /// Endpointing saw a pause: the end of a turn.
    public var speechFinal: Bool
    /// The answer to a `Finalize`.
    public var fromFinalize: Bool

    public init(
        transcript: String, confidence: Double = 0.95, start: Double, duration: Double, isFinal: Bool, speechFinal: Bool, fromFinalize: Bool = false
    ) {
        self.transcript = transcript
        self.confidence = confidence
        self.start = start
        self.duration = duration
        self.isFinal = isFinal
        self.speechFinal = speechFinal
        self.fromFinalize = fromFinalize
    }
}

/// What Deepgram sends as text on a listen socket, told apart by `type`.
public enum ListenMessage: Sendable, Hashable {
    case results(ListenResults)
    case speechStarted(timestamp: Double)
    case utteranceEnd(lastWordEnd: Double)
    case metadata(requestID: String, duration: Double)
    /// A message type this client does not use.
    case other(String)
}

/// Written as Deepgram writes it (for the doubles); read by `init(json:)`.
extension ListenMessage: Encodable {
    private struct Wire: Encodable {
        struct Channel: Encodable {
            struct Alternative: Encodable {
                var transcript: String
                var confidence: Double?
            }

            var alternatives: [Alternative]
        }

        var type: String
        // Results
        var channel_index: [Int]?
        var duration: Double?
        var start: Double?
        var is_final: Bool?
        var speech_final: Bool?
        var from_finalize: Bool?
        var channel: Channel?
        // SpeechStarted, UtteranceEnd (their `channel` is an array; not read)
        var timestamp: Double?
        var last_word_end: Double?
        // Metadata
        var request_id: String?

        enum CodingKeys: String, CodingKey {
            case type, channel_index, duration, start, is_final, speech_final, from_finalize, channel, timestamp, last_word_end, request_id
        }

        init(type: String) {
            self.type = type
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var wire: Wire
        switch self {
        case .results(let results):
            wire = Wire(type: "Results")
            wire.channel_index = [0, 1]
            wire.start = results.start
            wire.duration = results.duration
            wire.is_final = results.isFinal
            wire.speech_final = results.speechFinal
            wire.from_finalize = results.fromFinalize
            wire.channel = .init(alternatives: [.init(transcript: results.transcript, confidence: results.confidence)])
        case .speechStarted(let timestamp):
            wire = Wire(type: "SpeechStarted")
            wire.timestamp = timestamp
        case .utteranceEnd(let lastWordEnd):
            wire = Wire(type: "UtteranceEnd")
            wire.last_word_end = lastWordEnd
        case .metadata(let requestID, let duration):
            wire = Wire(type: "Metadata")
            wire.request_id = requestID
            wire.duration = duration
        case .other(let type):
            wire = Wire(type: type)
        }
        var container = encoder.container(keyedBy: Wire.CodingKeys.self)
        try container.encode(wire.type, forKey: .type)
        try container.encodeIfPresent(wire.channel_index, forKey: .channel_index)
        try container.encodeIfPresent(wire.start, forKey: .start)
        try container.encodeIfPresent(wire.duration, forKey: .duration)
        try container.encodeIfPresent(wire.is_final, forKey: .is_final)
        try container.encodeIfPresent(wire.speech_final, forKey: .speech_final)
        try container.encodeIfPresent(wire.from_finalize, forKey: .from_finalize)
        try container.encodeIfPresent(wire.channel, forKey: .channel)
        try container.encodeIfPresent(wire.timestamp, forKey: .timestamp)
        try container.encodeIfPresent(wire.last_word_end, forKey: .last_word_end)
        try container.encodeIfPresent(wire.request_id, forKey: .request_id)
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// A message read with `JSONReader` (a listen socket has several a second per call, and
    /// `JSONDecoder` cost tens of microseconds each), with `JSONDecoder`'s rules for what is left out or null.
    public init(json: String) throws(DeepgramError) {
        self = try DeepgramMessage.read(json) { type, message throws(JSONShapeError) in
            switch type {
            case "Results":
                // The channel is read leniently (it is an array in other messages): without it, the transcript is empty.
                func firstAlternative() throws(JSONShapeError) -> (transcript: String, confidence: Double?)? {
                    guard let first = try message.object("channel")?.objects("alternatives")?.first, let transcript = try first.string("transcript") else { return nil }
                    return (transcript, try first.double("confidence"))
                }
                let alternative = try? firstAlternative()
                return .results(
                    ListenResults(
                        transcript: alternative?.transcript ?? "", confidence: alternative?.confidence ?? 0, start: try message.double("start") ?? 0,
                        duration: try message.double("duration") ?? 0, isFinal: try message.bool("is_final") ?? false,
                        speechFinal: try message.bool("speech_final") ?? false, fromFinalize: try message.bool("from_finalize") ?? false))
            case "SpeechStarted": return .speechStarted(timestamp: try message.double("timestamp") ?? 0)
            case "UtteranceEnd": return .utteranceEnd(lastWordEnd: try message.double("last_word_end") ?? 0)
            case "Metadata": return .metadata(requestID: try message.string("request_id") ?? "", duration: try message.double("duration") ?? 0)
            default: return .other(type)
            }
        }
    }
}

/// Deepgram's text messages, told apart by `type`.
enum DeepgramMessage {
    /// Reads `json` as a message object and hands its type and members to `read`; anything
    /// malformed, or of the wrong shape, is `DeepgramError.malformed`.
    static func read<Message>(_ json: String, _ read: (String, JSONObject) throws(JSONShapeError) -> Message) throws(DeepgramError) -> Message {
        guard let value = JSONReader.read(json.utf8) else { throw .malformed("not JSON") }
        do throws(JSONShapeError) {
            let message = try JSONObject(value)
            guard let type = try message.string("type") else { throw JSONShapeError("type is missing") }
            return try read(type, message)
        } catch {
            throw .malformed(error.description)
        }
    }
}
