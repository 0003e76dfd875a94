import AudioSocket
import Foundation
import Logging
import NIOConcurrencyHelpers
import Speech

/// What the engine knows of a call it placed: whom it calls and with which template.
public struct ResolvedCall: Sendable {
    public var context: CallContext
    public var template: PitchTemplate
    /// The campaign's own analysis fields (name → what to look for), for the model's analysis.
    public var analysisFields: [String: String]

    public init(context: CallContext, template: PitchTemplate, analysisFields: [String: String] = [:]) {
        self.context = context
        self.template = template
        self.analysisFields = analysisFields
    }
}

/// Decides whether an AudioSocket UUID is one of our calls. The campaign store answers in
/// production; `cex engine serve` can use a directory of registered calls or accept any call.
public protocol CallResolver: Sendable {
    func resolve(callID: UUID) async -> ResolvedCall?
}

/// A resolver that answers every call with one template and lead: for rehearsals only.
public struct AnyCallResolver: CallResolver {
    public var template: PitchTemplate
    public var lead: [String: String]
    public var timeZone: TimeZone
    public var analysisFields: [String: String]

    public init(template: PitchTemplate, lead: [String: String], timeZone: TimeZone = .current, analysisFields: [String: String] = [:]) {
        self.template = template
        self.lead = lead
        self.timeZone = timeZone
        self.analysisFields = analysisFields
    }

    public func resolve(callID: UUID) async -> ResolvedCall? {
        ResolvedCall(
            context: CallContext(callID: callID, lead: self.lead, timeZone: self.timeZone, startedAt: Date()), template: self.template,
            analysisFields: self.analysisFields)
    }
}

/// The calls an engine is hosting, so that a shutdown can end them politely.
public final class LiveCalls: Sendable {
    private struct State {
        var ends: [UUID: @Sendable () -> Void] = [:]
        var ending = false
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Registers a call; `end` asks it to say goodbye and hang up. A call that arrives while
    /// everything is ending is asked at once.
    func add(_ callID: UUID, end: @escaping @Sendable () -> Void) {
        let endNow = self.state.withLockedValue { state in
            state.ends[callID] = end
            return state.ending
        }
        if endNow { end() }
    }

    func remove(_ callID: UUID) {
        self.state.withLockedValue { _ = $0.ends.removeValue(forKey: callID) }
    }

    /// Calls in progress.
    public var count: Int { self.state.withLockedValue { $0.ends.count } }

    /// Asks every call, and every call that still arrives, to end.
    public func endAll() {
        let ends = self.state.withLockedValue { state in
            state.ending = true
            return Array(state.ends.values)
        }
        for end in ends { end() }
    }
}

/// The shared real-time conversation engine: hosts every answered call that reaches the
/// AudioSocket server, with the dialogue policy the providers make from the call's template.
public struct ConversationEngine: AudioSocketApplication {
    public var resolver: any CallResolver
    public var providers: ConversationProviders
    public var logger: Logger
    /// The calls in progress.
    public let liveCalls = LiveCalls()

    public init(resolver: any CallResolver, providers: ConversationProviders, logger: Logger) {
        self.resolver = resolver
        self.providers = providers
        self.logger = logger
    }

    public func admit(callID: UUID) async -> PreparedCall? {
        guard let resolved = await self.resolver.resolve(callID: callID) else { return nil }
        let policy = self.providers.policy(resolved.template)
        var modelAnalyzer = self.providers.analyzer?(resolved.template)
        modelAnalyzer?.customFields = resolved.analysisFields
        do {
            let dialogue = try policy.start(resolved.context)
            return PreparedCall(
                context: resolved.context, templateName: resolved.template.name, dialogue: dialogue,
                analyzer: LexiconAnalyzer(template: resolved.template), modelAnalyzer: modelAnalyzer,
                recognition: RecognitionOptions(phrases: policy.phrases),
                voicemailMessage: try resolved.template.voicemail.map { try resolved.template.render($0, lead: resolved.context.lead) }
            )
        } catch {
            // The lead lacks a variable the template needs: never call with a broken opening.
            var logger = self.logger
            logger[metadataKey: "call.id"] = "\(callID)"
            logger.error("call refused: its template cannot be rendered for the lead", metadata: ["error": "\(error)"])
            return nil
        }
    }

    public func handle(_ session: AudioSocketSession, call: PreparedCall) async throws {
        var logger = self.logger
        logger[metadataKey: "call.id"] = "\(call.context.callID)"
        let record = await CallSession(call: call, providers: self.providers, logger: logger).run(session, liveCalls: self.liveCalls)
        logger.info(
            "call ended",
            metadata: [
                "call.outcome": "\(record.outcome?.rawValue ?? "-")", "call.turns": "\(record.turns.count)",
                "call.ended_by": "\(record.endedBy ?? "-")", "audio.underruns": "\(record.underruns)",
            ]
        )
    }
}

/// Watches the engine's calls: for metrics and benchmarks. Called off the audio path's hot
/// loops but from the call's own task, so implementations must be quick and never block.
public protocol ConversationObserver: Sendable {
    func callStarted()
    /// The first frame of the reply to a caller turn went out `latency` after the event that
    /// ended the turn (the recogniser's end of utterance, or the frame that completed the
    /// silence) reached the engine. Of that, `providers` is the time spent waiting on cloud
    /// providers; the rest is what the engine itself adds.
    func replyStarted(after latency: Duration, providers: ProviderTimes)
    func callEnded(_ record: CallRecord)
}

/// What a reply waited on its cloud providers, measured at the wire: each from the request's
/// last byte out to the read that brought the answer. Nil for an offline provider.
public struct ProviderTimes: Sendable, Hashable {
    /// The model's time to its first token.
    public var llmTimeToFirstToken: Duration?
    /// The speech service's time to the reply's first audio.
    public var ttsTimeToFirstByte: Duration?

    public init(llmTimeToFirstToken: Duration? = nil, ttsTimeToFirstByte: Duration? = nil) {
        self.llmTimeToFirstToken = llmTimeToFirstToken
        self.ttsTimeToFirstByte = ttsTimeToFirstByte
    }

    /// The providers' share of the reply's latency.
    public var total: Duration { (self.llmTimeToFirstToken ?? .zero) + (self.ttsTimeToFirstByte ?? .zero) }
}
