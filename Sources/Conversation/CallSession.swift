import AudioSocket
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Speech

/// Everything one admitted call needs besides its audio.
public struct PreparedCall: Sendable {
    public var context: CallContext
    public var templateName: String
    public var dialogue: any DialogueSession
    public var analyzer: LexiconAnalyzer
    /// A model's post-call analysis, when the providers have one; the lexicon's stands when it fails.
    public var modelAnalyzer: LLMAnalyzer?
    public var recognition: RecognitionOptions
    /// The message to leave on an answering machine, rendered for the lead; nil: leave none.
    public var voicemailMessage: String?

    public init(
        context: CallContext, templateName: String, dialogue: any DialogueSession, analyzer: LexiconAnalyzer, modelAnalyzer: LLMAnalyzer? = nil,
        recognition: RecognitionOptions, voicemailMessage: String? = nil
    ) {
        self.voicemailMessage = voicemailMessage
        self.context = context
        self.templateName = templateName
        self.dialogue = dialogue
        self.analyzer = analyzer
        self.modelAnalyzer = modelAnalyzer
        self.recognition = recognition
    }
}

/// The providers and rules every call of an engine shares.
public struct ConversationProviders: Sendable {
    public var recognizer: any SpeechRecognizer
    public var synthesizer: any SpeechSynthesizer
    public var sink: any CallRecordSink
    public var turnTaking: TurnTaking.Configuration
    public var voiceActivity: VoiceActivityDetector.Configuration
    /// Counts calls and measures replies (metrics, benchmarks).
    public var observer: (any ConversationObserver)?
    /// The dialogue policy for a call's template; the scripted policy by default.
    public var policy: @Sendable (PitchTemplate) -> any DialoguePolicy
    /// A model's post-call analysis for a call's template (nil: the lexicon's only).
    public var analyzer: (@Sendable (PitchTemplate) -> LLMAnalyzer)?
    /// What takes over for the rest of a call when the recogniser or the synthesiser fails
    /// (the offline engines behind a cloud provider); nil when there is nothing to fall back to.
    public var fallbackRecognizer: (any SpeechRecognizer)?
    public var fallbackSynthesizer: (any SpeechSynthesizer)?

    public init(
        recognizer: any SpeechRecognizer, synthesizer: any SpeechSynthesizer, sink: any CallRecordSink,
        turnTaking: TurnTaking.Configuration = .init(), voiceActivity: VoiceActivityDetector.Configuration = .init(),
        observer: (any ConversationObserver)? = nil,
        policy: @escaping @Sendable (PitchTemplate) -> any DialoguePolicy = { ScriptedPolicy(template: $0) },
        fallbackRecognizer: (any SpeechRecognizer)? = nil, fallbackSynthesizer: (any SpeechSynthesizer)? = nil,
        analyzer: (@Sendable (PitchTemplate) -> LLMAnalyzer)? = nil
    ) {
        self.analyzer = analyzer
        self.fallbackRecognizer = fallbackRecognizer
        self.fallbackSynthesizer = fallbackSynthesizer
        self.recognizer = recognizer
        self.synthesizer = synthesizer
        self.sink = sink
        self.turnTaking = turnTaking
        self.voiceActivity = voiceActivity
        self.observer = observer
        self.policy = policy
    }
}

/// One call's conversation: inbound audio → turn rules and recogniser → policy → chunker →
/// synthesiser → paced outbound audio, with barge-in, and the call record kept as it goes.
///
/// All decisions happen in one loop over a mailbox, in arrival order; the reader, the
/// recogniser and the speaking task only post to it. When the caller hangs up every task,
/// stream and decoder of the call is released before `run` returns.
struct CallSession {
    let call: PreparedCall
    let providers: ConversationProviders
    let logger: Logger
    /// The synthesiser failed once: the fallback speaks for the rest of the call.
    let synthesizerFailed = NIOLockedValueBox(false)

    enum Input: Sendable {
        /// What the turn rules decided on an inbound frame. `at` (here and below): when the frame
        /// or event reached the engine, for the reply latency of the turn it ends.
        case turn([TurnTaking.Action], at: NIODeadline)
        case dtmf(Character)
        case recognition(RecognitionEvent, at: NIODeadline)
        case recognitionFailed(String)
        case callerGone
        /// An answering machine's record tone, and its end.
        case beep
        case beepEnded
        /// Time to look again whether an answering machine has gone quiet.
        case machineQuietCheck
        /// The wait for the words of a turn the caller hung up in is over.
        case drained
        /// The engine is shutting down: say goodbye and hang up.
        case shutdown
        /// From the speaking task of utterance `id`.
        case firstText(id: Int, at: NIODeadline)
        case firstAudio(id: Int, at: NIODeadline)
        /// What the utterance waited on a cloud provider (the model's first token, the speech's first audio).
        case waited(id: Int, ProviderTimes)
        /// The utterance's first frame was written to Asterisk.
        case firstFrameOut(id: Int, at: NIODeadline)
        case action(id: Int, PolicyAction)
        case failover(ProviderFailover)
        case finished(id: Int, text: String, heard: String, interrupted: Bool)
    }

    /// Per-utterance state in the loop.
    struct Speaking {
        var id: Int
        var task: Task<SpokenReply, Never>
        /// The caller turn this answers (index in `record.turns`), for its timeline.
        var answering: Int?
        /// When the input that ended that turn reached the engine.
        var turnEndedAt: NIODeadline?
        /// The first of each provider's waits, for the reply's share of them.
        var providers = ProviderTimes()
    }

    /// Runs the call to its end. Its tasks run on the call's event loop: the providers' sockets
    /// opened from them are on that loop too, so a reply's request, its text, its speech and its
    /// audio never wait for another thread to wake.
    func run(_ session: AudioSocketSession, liveCalls: LiveCalls? = nil) async -> CallRecord {
        await withTaskExecutorPreference(session.executor) { await self.converse(session, liveCalls: liveCalls) }
    }

    private func converse(_ session: AudioSocketSession, liveCalls: LiveCalls?) async -> CallRecord {
        // One monotonic clock for the whole record: the event loops', which also stamps frames written.
        let start = NIODeadline.now()
        func offset(_ deadline: NIODeadline) -> Duration { .nanoseconds((deadline - start).nanoseconds) }
        func offset() -> Duration { offset(.now()) }
        func milliseconds(_ duration: Duration) -> Int { Int(duration / .milliseconds(1)) }

        var record = CallRecord(callID: self.call.context.callID, template: self.call.templateName, startedAt: self.call.context.startedAt)
        // The reader applies each inbound frame to the rules itself and posts only what they
        // decide, so a frame costs one task switch, not two; the loop takes the lock for the rest.
        let rules = NIOLockedValueBox(TurnTaking(configuration: self.providers.turnTaking, detector: self.providers.voiceActivity))
        var history: [DialogueTurn] = []
        let (mailbox, post) = AsyncStream<Input>.makeStream()
        liveCalls?.add(self.call.context.callID) { post.yield(.shutdown) }
        self.providers.observer?.callStarted()
        defer { liveCalls?.remove(self.call.context.callID) }

        // The recogniser opens while the greeting plays; what the caller says meanwhile waits for it.
        let recognition = RecognitionLine()

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var recognizer = self.providers.recognizer
                var fallback = self.providers.fallbackRecognizer
                while true {
                    do {
                        let opened = try await recognizer.open(self.call.recognition)
                        guard recognition.attach(opened) else { return }
                        for try await event in opened.events { post.yield(.recognition(event, at: .now())) }
                        return
                    } catch is CancellationError {
                        return
                    } catch {
                        guard let next = fallback, !Task.isCancelled else {
                            post.yield(.recognitionFailed("\(error)"))
                            return
                        }
                        // The rest of the call is heard by the fallback; audio waits for it meanwhile.
                        post.yield(.failover(ProviderFailover(
                            role: "stt", provider: Self.name(recognizer), fallback: Self.name(next), reason: "\(error)")))
                        recognition.detach()
                        recognizer = next
                        fallback = nil
                    }
                }
            }
            group.addTask {
                var beep = BeepDetector()
                for await item in session.inbound {
                    switch item {
                    case .audio(let audio):
                        recognition.feed(audio.samples)
                        switch beep.feed(audio.samples) {
                        case .tone?: post.yield(.beep)
                        case .toneEnded?: post.yield(.beepEnded)
                        case nil: break
                        }
                        let level = VoiceActivityDetector.level(of: audio.samples)
                        let actions = rules.withLockedValue { $0.audioFrame(level: level, at: offset()) }
                        if !actions.isEmpty { post.yield(.turn(actions, at: .now())) }
                    case .dtmf(let digit):
                        post.yield(.dtmf(digit))
                    }
                }
                post.yield(.callerGone)
            }
            // Time passes for the turn rules without inbound audio too: a leg that sends no
            // frames while its caller is quiet still gets the turn's end and silence prompts.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(50))
                    let actions = rules.withLockedValue { $0.clock(at: offset()) }
                    if !actions.isEmpty { post.yield(.turn(actions, at: .now())) }
                }
            }

            var nextID = 0
            var speaking: Speaking?
            // When each utterance began, until it is on record (a replaced reply finishes after its successor began).
            var startTimes: [Int: Int] = [:]
            var endAfterSpeech = false
            var lastFinalMs: Int?
            /// The caller hung up in the middle of a turn: its words are awaited, nothing is said.
            var hangingUp = false
            /// Why the opening (utterance 0) was cut, when the engine cut it.
            var openingCut: String?
            let openingID = 0

            func startSpeaking(
                _ outputs: AsyncThrowingStream<PolicyOutput, any Error>, protected: Bool = false, answering: Int? = nil, turnEndedAt: NIODeadline? = nil
            ) {
                if let current = speaking {
                    session.outbound.clear()
                    current.task.cancel()
                }
                let id = nextID
                nextID += 1
                let now = offset()
                rules.withLockedValue { $0.agentStarted(at: now, protected: protected) }
                let task = Task(executorPreference: session.executor) { await self.speak(outputs, id: id, outbound: session.outbound, post: post) }
                speaking = Speaking(id: id, task: task, answering: answering, turnEndedAt: turnEndedAt)
                startTimes[id] = milliseconds(now)
            }
            func fixed(_ outputs: [PolicyOutput]) -> AsyncThrowingStream<PolicyOutput, any Error> {
                AsyncThrowingStream { continuation in
                    for output in outputs { continuation.yield(output) }
                    continuation.finish()
                }
            }
            /// An answering machine answered: the call is voicemail, and ends now, mid-line if need be.
            func hangUpOnMachine() async {
                stopForMachine()
                record.endedBy = "agent"
                await session.outbound.hangup()
            }
            /// An answering machine answered: what the agent was saying stops (a message, when
            /// the template has one, waits for the tone or the quiet after the greeting).
            func stopForMachine() {
                record.outcome = .voicemail
                if speaking?.id == openingID { openingCut = "voicemail" }
                session.outbound.clear()
                speaking?.task.cancel()
            }
            /// Where leaving a message on an answering machine is: nil while none is pending.
            var drop: VoicemailDrop?
            /// Leaves the template's message, in full, then hangs up.
            func leaveMessage(_ message: String, after: String) async {
                drop = .leaving(id: nextID)
                endAfterSpeech = true
                startSpeaking(fixed([.text(message)]), protected: true)
                record.voicemailMessage = .init(startMs: milliseconds(offset()), after: after)
                await self.providers.sink.update(record)
            }
            /// An answering machine answered, and `waiting` is what the message waits for. True:
            /// the call has ended (no message to leave); false: what the agent said stopped, and
            /// the message waits.
            func machineAnswered(waiting: VoicemailDrop) async -> Bool {
                guard self.call.voicemailMessage != nil else {
                    // No message is left without the template's (a recorded artificial-voice
                    // message needs the call's consent); the lead is retried as voicemail.
                    await hangUpOnMachine()
                    return true
                }
                stopForMachine()
                drop = waiting
                checkMachineSoon()
                return false
            }
            func checkMachineSoon() {
                Task { [post] in
                    try? await Task.sleep(for: .milliseconds(100))
                    post.yield(.machineQuietCheck)
                }
            }
            /// A caller turn on record, with its live analysis; `answered`: a reply to it is under
            /// way, and the turn gets the timeline that reply's marks go into.
            func callerTurn(_ text: String, at now: Duration, answered: Bool) {
                let lastVoicedMs = rules.withLockedValue { $0.lastVoiced }.map(milliseconds)
                let timeline = answered ? CallRecord.Timeline(speechEndMs: lastVoicedMs, endpointMs: milliseconds(now), sttFinalMs: lastFinalMs) : nil
                record.turns.append(.init(
                    speaker: .caller, text: text, startMs: lastVoicedMs ?? milliseconds(now), endMs: lastVoicedMs,
                    interrupted: false, heard: nil, timeline: timeline, analysis: self.call.analyzer.analyze(turn: text)
                ))
            }
            func timeline(_ update: (inout CallRecord.Timeline) -> Void) {
                guard let index = speaking?.answering else { return }
                var timeline = record.turns[index].timeline ?? CallRecord.Timeline()
                update(&timeline)
                record.turns[index].timeline = timeline
            }

            startSpeaking(fixed([.text(self.call.dialogue.opening)]), protected: true)

            loop: for await input in mailbox {
                let now = offset()
                var actions: [TurnTaking.Action] = []
                var arrivedAt: NIODeadline?
                switch input {
                case .turn(let decided, let at):
                    arrivedAt = at
                    actions = decided
                case .recognition(let event, let at):
                    arrivedAt = at
                    if case .final = event { lastFinalMs = milliseconds(now) }
                    if !hangingUp, let text = Self.optOutOverProtectedLine(event, rules: rules), record.outcome != .doNotCall {
                        // Only an opt-out cuts the opening or a closing, and at once.
                        rules.withLockedValue { $0.takeOver(at: now) }
                        if speaking?.id == openingID { openingCut = "opt_out" }
                        history.append(DialogueTurn(speaker: .caller, text: text))
                        startSpeaking(self.call.dialogue.reply(to: text, history: history), answering: record.turns.count, turnEndedAt: at)
                        callerTurn(text, at: now, answered: true)
                        await self.providers.sink.update(record)
                        continue
                    }
                    let overProtectedLine = rules.withLockedValue { $0.isAgentProtected }
                    actions = rules.withLockedValue { $0.recognizer(event, at: now) }
                    if !hangingUp, drop == nil, record.outcome == nil, overProtectedLine, case .final(let text) = event, Self.isVoicemailGreeting(text) {
                        // A machine's greeting over the opening: nobody is listening to it. (Its words
                        // go on record with the turn they end.)
                        if await machineAnswered(waiting: .awaitingTone) { break loop }
                    }
                case .recognitionFailed(let reason):
                    self.logger.warning("speech recognition failed", metadata: ["error": "\(reason)"])
                case .dtmf(let digit):
                    record.dtmf.append(.init(digit: String(digit), atMs: milliseconds(now)))
                    if let outputs = self.call.dialogue.dtmf(digit) {
                        if speaking?.id == openingID { openingCut = "opt_out" }
                        startSpeaking(fixed(outputs))
                    }
                case .callerGone:
                    record.endedBy = record.endedBy ?? "caller"
                    if speaking?.id == openingID { openingCut = "caller_hung_up" }
                    guard !hangingUp, rules.withLockedValue({ $0.isCallerTurnOpen }) else { break loop }
                    // Hung up mid-turn: what they said still counts. Wait a moment for its words.
                    hangingUp = true
                    session.outbound.clear()
                    speaking?.task.cancel()
                    recognition.finalize()
                    Task { [post] in
                        try? await Task.sleep(for: .seconds(1))
                        post.yield(.drained)
                    }
                case .drained:
                    break loop
                case .beep where record.outcome == nil || record.outcome == .callback || drop == .awaitingTone:
                    self.logger.info("answering machine: record tone heard", metadata: ["call.offset_ms": "\(milliseconds(now))"])
                    // The message starts when the tone ends (a leg that goes quiet after it sends no frames to say so).
                    if await machineAnswered(waiting: .inTone) { break loop }
                case .beepEnded where drop == .inTone || drop == .awaitingTone:
                    if let message = self.call.voicemailMessage { await leaveMessage(message, after: "tone") }
                case .machineQuietCheck where drop == .awaitingTone || drop == .inTone:
                    let quietFor = rules.withLockedValue { $0.lastVoiced }.map { now - $0 } ?? now
                    if let message = self.call.voicemailMessage, drop == .inTone ? quietFor >= .milliseconds(200) : quietFor >= .seconds(1) {
                        await leaveMessage(message, after: drop == .inTone ? "tone" : "quiet")
                    } else {
                        checkMachineSoon()
                    }
                case .shutdown where !endAfterSpeech:
                    // (A call already saying its closing line finishes it.)
                    record.endedBy = "shutdown"
                    if speaking?.id == openingID { openingCut = "shutdown" }
                    endAfterSpeech = true
                    startSpeaking(fixed(self.call.dialogue.shutdown()))
                case .firstText(let id, let at) where id == speaking?.id:
                    timeline { $0.policyFirstTextMs = milliseconds(offset(at)) }
                case .firstAudio(let id, let at) where id == speaking?.id:
                    timeline {
                        // Each chunk reports its first audio; the reply's first is the one that counts.
                        if $0.ttsFirstAudioMs == nil { $0.ttsFirstAudioMs = milliseconds(offset(at)) }
                    }
                case .waited(let id, let times) where id == speaking?.id:
                    guard var kept = speaking?.providers else { continue }
                    // Each provider's first answer is the one the reply's start waited for.
                    kept.llmTimeToFirstToken = kept.llmTimeToFirstToken ?? times.llmTimeToFirstToken
                    kept.ttsTimeToFirstByte = kept.ttsTimeToFirstByte ?? times.ttsTimeToFirstByte
                    speaking?.providers = kept
                    timeline {
                        $0.llmTimeToFirstTokenMs = kept.llmTimeToFirstToken.map(milliseconds)
                        $0.ttsTimeToFirstByteMs = kept.ttsTimeToFirstByte.map(milliseconds)
                    }
                case .firstFrameOut(let id, let at) where id == speaking?.id:
                    let sent = offset(at)
                    if record.firstAgentAudioMs == nil {
                        record.firstAgentAudioMs = milliseconds(sent)
                        // On record at once: after a crash, it tells a cut conversation from an abandoned call.
                        await self.providers.sink.update(record)
                    }
                    guard let index = speaking?.answering, record.turns[index].timeline?.firstFrameOutMs == nil else { continue }
                    timeline { $0.firstFrameOutMs = milliseconds(sent) }
                    if let ended = speaking?.turnEndedAt {
                        self.providers.observer?.replyStarted(after: .nanoseconds((at - ended).nanoseconds), providers: speaking?.providers ?? ProviderTimes())
                    }
                case .failover(let failover):
                    record.failovers = (record.failovers ?? []) + [
                        .init(role: failover.role, provider: failover.provider, fallback: failover.fallback, reason: failover.reason, atMs: milliseconds(now))
                    ]
                    self.logger.warning("provider failed, offline fallback for the rest of the call", metadata: [
                        "provider.role": "\(failover.role)", "provider": "\(failover.provider)", "error": "\(failover.reason)",
                    ])
                    await self.providers.sink.update(record)
                case .action(let id, let action):
                    record.actions.append(action)
                    if case .endCall(let outcome) = action {
                        record.outcome = record.outcome ?? outcome
                        endAfterSpeech = true
                        // The closing line is said in full: speech over it does not cut it.
                        if id == speaking?.id { rules.withLockedValue { $0.protectAgent() } }
                    }
                    // Opt-outs and callbacks are on record at once, not at the end of the call.
                    await self.providers.sink.update(record)
                case .finished(let id, let text, let heard, let interrupted):
                    defer { startTimes[id] = nil }
                    if !text.isEmpty {
                        // In the order spoken: a line cut by an opt-out ends after the caller's turn was noted.
                        let startMs = startTimes[id] ?? milliseconds(now)
                        let index = record.turns.lastIndex { $0.startMs <= startMs }.map { $0 + 1 } ?? 0
                        record.turns.insert(.init(
                            speaker: .agent, text: text, startMs: startMs, endMs: milliseconds(now), interrupted: interrupted, heard: heard
                        ), at: index)
                        if let answering = speaking?.answering, answering >= index { speaking?.answering = answering + 1 }
                        history.append(DialogueTurn(speaker: .agent, text: heard))
                        await self.providers.sink.update(record)
                    }
                    if case .leaving(id)? = drop {
                        record.voicemailMessage?.endMs = milliseconds(now)
                        record.voicemailMessage?.complete = !interrupted
                    }
                    if id == openingID, record.disclosure == nil {
                        record.disclosure = .init(heardInFull: !interrupted, endMs: milliseconds(now), cutBy: interrupted ? openingCut ?? "caller_hung_up" : nil)
                        await self.providers.sink.update(record)
                    }
                    guard speaking?.id == id else { continue }
                    speaking = nil
                    actions = rules.withLockedValue { $0.agentStopped(at: now) }
                    if hangingUp { continue }
                    if endAfterSpeech {
                        record.endedBy = record.endedBy ?? "agent"
                        await session.outbound.hangup()
                        break loop
                    }
                default:
                    break
                }

                for action in actions {
                    switch action {
                    case .bargeIn:
                        session.outbound.clear()
                        speaking?.task.cancel()
                        self.logger.debug("barge-in", metadata: ["call.offset_ms": "\(milliseconds(now))"])
                    case .finalizeRecognizer:
                        recognition.finalize()
                    case .endOfTurn(let text) where hangingUp:
                        // The words of the turn the caller hung up in.
                        if !text.isEmpty { callerTurn(text, at: now, answered: false) }
                        break loop
                    case .endOfTurn(let text) where record.outcome == nil && Self.isVoicemailGreeting(text):
                        // A machine's greeting ("leave a message after the tone"): nobody to talk to.
                        callerTurn(text, at: now, answered: false)
                        if await machineAnswered(waiting: .awaitingTone) { break loop }
                    case .endOfTurn(let text) where drop != nil:
                        // The machine's own words: on record, never answered.
                        if !text.isEmpty { callerTurn(text, at: now, answered: false) }
                    case .silencePrompt where drop != nil, .maximumDurationReached where drop != nil:
                        break
                    case .endOfTurn(let text):
                        // The reply first: the turn's analysis and record are written while it is on its way.
                        history.append(DialogueTurn(speaker: .caller, text: text))
                        if !endAfterSpeech {
                            startSpeaking(self.call.dialogue.reply(to: text, history: history), answering: record.turns.count, turnEndedAt: arrivedAt)
                        }
                        callerTurn(text, at: now, answered: true)
                        await self.providers.sink.update(record)
                    case .silencePrompt where hangingUp, .maximumDurationReached where hangingUp:
                        break
                    case .silencePrompt(let count):
                        if !endAfterSpeech { startSpeaking(fixed(self.call.dialogue.silence(count: count))) }
                    case .maximumDurationReached:
                        startSpeaking(fixed(self.call.dialogue.timeUp()))
                    }
                }
            }

            // The call is over: stop speaking, recognising and reading, and release it all.
            if let current = speaking {
                current.task.cancel()
                let reply = await current.task.value
                if !reply.text.isEmpty {
                    record.turns.append(.init(
                        speaker: .agent, text: reply.text, startMs: startTimes[current.id] ?? milliseconds(offset()), endMs: milliseconds(offset()), interrupted: true, heard: reply.heard
                    ))
                }
            }
            if record.voicemailMessage != nil, record.voicemailMessage?.endMs == nil {
                // The machine hung up on it.
                record.voicemailMessage?.endMs = milliseconds(offset())
                record.voicemailMessage?.complete = false
            }
            if record.disclosure == nil {
                // Still under way when the call ended: whatever ended the call cut it (noted in `openingCut`).
                record.disclosure = .init(heardInFull: false, endMs: milliseconds(offset()), cutBy: openingCut ?? "caller_hung_up")
            }
            // Words of a turn the caller never finished still count: a callback asked for, a wrong number.
            if let text = rules.withLockedValue({ $0.unfinishedTurn() }) { callerTurn(text, at: offset(), answered: false) }
            if record.outcome == nil, let last = record.turns.last, last.speaker == .caller {
                for action in Self.decisions(afterHangingUpOn: last.text, context: self.call.context) {
                    record.actions.append(action)
                    if case .endCall(let outcome) = action { record.outcome = outcome }
                }
            }
            // Closes the session, or the one still opening as soon as it opens.
            recognition.close()
            post.finish()
            group.cancelAll()
        }

        let statistics = session.outbound.statistics
        record.framesSent = statistics.framesSent
        record.underruns = statistics.underruns
        record.lateFrames = statistics.lateFrames
        record.endedAt = self.call.context.startedAt.addingTimeInterval(Double(milliseconds(offset())) / 1000)
        record.analysis = self.call.analyzer.analyze(call: record)
        if let model = self.call.modelAnalyzer {
            do {
                record.analysis = try await model.analyze(record, timeZone: self.call.context.timeZone)
            } catch {
                record.failovers = (record.failovers ?? []) + [
                    .init(role: "analysis", provider: model.provider, fallback: "lexicon", reason: "\(error)", atMs: milliseconds(offset()))
                ]
            }
        }
        record.outcome = record.analysis?.outcome
        await self.providers.sink.finish(record)
        self.providers.observer?.callEnded(record)
        return record
    }

    /// Leaving a message on an answering machine.
    enum VoicemailDrop: Hashable {
        /// Its greeting was heard: waiting for the tone, or the greeting's end and 1 s of quiet.
        case awaitingTone
        /// The tone is sounding; the message starts when it ends.
        case inTone
        /// The message, utterance `id`, is being left.
        case leaving(id: Int)
    }

    /// Words only an answering machine's greeting says.
    static func isVoicemailGreeting(_ text: String) -> Bool {
        PhraseMatcher.voicemailGreeting.matches(PhraseMatcher.words(text))
    }

    /// Speaks one reply: streamed policy text, cut into chunks, each synthesised and played.
    /// Posts the reply's timeline marks, its actions at once, and what was heard at the end.
    struct SpokenReply: Sendable {
        var text: String
        var heard: String
        var interrupted: Bool
    }

    private func speak(_ outputs: AsyncThrowingStream<PolicyOutput, any Error>, id: Int, outbound: OutboundAudio, post: AsyncStream<Input>.Continuation) async -> SpokenReply {
        var chunker = SpeechChunker()
        var text: [String] = []
        var heard: [String] = []
        var interrupted = false
        var sawText = false

        func say(_ chunk: String) async -> Bool {
            text.append(chunk)
            let spoken = SpokenText.normalize(chunk)
            let failedOver = self.synthesizerFailed.withLockedValue { $0 }
            let synthesizer = failedOver ? self.providers.fallbackSynthesizer ?? self.providers.synthesizer : self.providers.synthesizer
            let utterance = outbound.open { at in post.yield(.firstFrameOut(id: id, at: at)) }
            let audio = ReplyAudio(
                utterance: utterance, onTimeToFirstByte: { post.yield(.waited(id: id, ProviderTimes(ttsTimeToFirstByte: $0))) },
                onFirstAudio: { post.yield(.firstAudio(id: id, at: .now())) })
            var failure: (any Error)?
            do {
                try await synthesizer.synthesize(spoken, into: audio)
            } catch {
                failure = error
            }
            let result = await utterance.finish()
            if let failure {
                guard !failedOver, let fallback = self.providers.fallbackSynthesizer, !Task.isCancelled else {
                    self.logger.warning("speech synthesis failed", metadata: ["error": "\(failure)"])
                    return false
                }
                // The fallback voice says this chunk again and the rest of the call.
                self.synthesizerFailed.withLockedValue { $0 = true }
                post.yield(.failover(ProviderFailover(role: "tts", provider: synthesizer.voice, fallback: fallback.voice, reason: "\(failure)")))
                text.removeLast()
                return await say(chunk)
            }
            heard.append(Self.heardPrefix(of: chunk, played: result.samplesPlayed, given: result.samplesGiven))
            if !result.completed || Task.isCancelled {
                interrupted = result.samplesGiven > result.samplesPlayed || Task.isCancelled
                return false
            }
            return true
        }

        do {
            outer: for try await output in outputs {
                switch output {
                case .text(let piece):
                    if !sawText {
                        sawText = true
                        post.yield(.firstText(id: id, at: .now()))
                    }
                    for chunk in chunker.append(piece) {
                        guard await say(chunk) else { break outer }
                    }
                case .action(let action):
                    post.yield(.action(id: id, action))
                case .failover(let failover):
                    post.yield(.failover(failover))
                case .timeToFirstToken(let time):
                    post.yield(.waited(id: id, ProviderTimes(llmTimeToFirstToken: time)))
                }
                if Task.isCancelled { break }
            }
            if !interrupted && !Task.isCancelled {
                for chunk in chunker.finish() {
                    guard await say(chunk) else { break }
                }
            }
        } catch {
            self.logger.warning("the dialogue policy failed", metadata: ["error": "\(error)"])
        }
        if Task.isCancelled { interrupted = true }
        let reply = SpokenReply(text: text.joined(separator: " "), heard: heard.filter { !$0.isEmpty }.joined(separator: " "), interrupted: interrupted)
        post.yield(.finished(id: id, text: reply.text, heard: reply.heard, interrupted: reply.interrupted))
        return reply
    }

    static func name(_ recognizer: any SpeechRecognizer) -> String { String(describing: type(of: recognizer)) }

    /// The words of an opt-out the recogniser heard over a line speech cannot cut; nil otherwise.
    static func optOutOverProtectedLine(_ event: RecognitionEvent, rules: NIOLockedValueBox<TurnTaking>) -> String? {
        let text: String
        switch event {
        case .final(let words), .interim(let words): text = words
        default: return nil
        }
        // Only a sure one: an opt-out among other words is answered, with a question, after the line.
        guard PhraseMatcher.optOutCertainty(PhraseMatcher.words(text)) == .sure, rules.withLockedValue({ $0.isAgentProtected }) else { return nil }
        return text
    }

    /// What a caller's last words decide when they hung up before the policy answered them: an
    /// opt-out, a wrong number, a callback (with its time when it can be read). Nothing else is
    /// decided for them.
    static func decisions(afterHangingUpOn text: String, context: CallContext) -> [PolicyAction] {
        let words = PhraseMatcher.words(text)
        switch PhraseMatcher.optOutCertainty(words) {
        case .sure: return [.addToDoNotCall, .endCall(.doNotCall)]
        // Gone before it could be asked: not put on the list unasked, and not called again for this campaign.
        case .unsure: return [.endCall(.notInterested)]
        case .none: break
        }
        if PhraseMatcher.wrongPerson.matches(words) { return [.endCall(.wrongPerson)] }
        if PhraseMatcher.callback.matches(words) {
            let time = CallbackTime.resolve(text, now: context.startedAt, timeZone: context.timeZone)
            return [.scheduleCallback(CallbackRequest(phrase: text, time: time, timeZone: context.timeZone.identifier)), .endCall(.callback)]
        }
        return []
    }

    /// The words of `chunk` that went out, in proportion to the samples played.
    static func heardPrefix(of chunk: String, played: Int, given: Int) -> String {
        guard given > 0, played > 0 else { return "" }
        if played >= given { return chunk }
        let words = chunk.split(separator: " ")
        let total = words.reduce(0) { $0 + $1.count + 1 }
        let reached = Double(played) / Double(given) * Double(total)
        var heard: [Substring] = []
        var position = 0
        for word in words {
            position += word.count + 1
            if Double(position) > reached { break }
            heard.append(word)
        }
        return heard.joined(separator: " ")
    }
}

/// A reply chunk's audio on its way to the call: marks the synthesiser's first audio, on
/// whichever thread made it, and queues it without waiting.
struct ReplyAudio: SpeechSink {
    let utterance: OutboundUtterance
    let onTimeToFirstByte: @Sendable (Duration) -> Void
    let onFirstAudio: @Sendable () -> Void
    private let first = NIOLockedValueBox(true)

    init(utterance: OutboundUtterance, onTimeToFirstByte: @escaping @Sendable (Duration) -> Void, onFirstAudio: @escaping @Sendable () -> Void) {
        self.utterance = utterance
        self.onTimeToFirstByte = onTimeToFirstByte
        self.onFirstAudio = onFirstAudio
    }

    func timeToFirstByte(_ time: Duration) { self.onTimeToFirstByte(time) }

    func play(_ samples: [Int16]) -> Bool {
        let isFirst = self.first.withLockedValue { isFirst in
            defer { isFirst = false }
            return isFirst
        }
        if isFirst { self.onFirstAudio() }
        return self.utterance.play(samples)
    }

    var executor: (any SerialExecutor)? { self.utterance.eventLoop.executor }
}
