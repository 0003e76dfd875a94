import Speech

/// Turn-taking rules of one call, as a value: who speaks, when the caller's turn ends, when
/// the caller interrupts the agent, when silence needs a prompt. Time is the call's offset,
/// passed in with every event, so the rules are tested without clocks.
///
/// A protected utterance (the opening with its disclosure, a closing line) cannot be talked
/// over: the caller's words over it are heard and held, and answered once it has been said in
/// full. Only an opt-out cuts it, and the engine, not these rules, acts on that. Time passes
/// for the rules with or without inbound audio (`clock(at:)`): a leg that sends no frames while
/// its caller is quiet still gets its turn's end and its silence prompts.
public struct TurnTaking: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Silence after speech before the recogniser is asked to finalise the turn.
        public var minimumSilence: Duration = .milliseconds(400)
        /// Silence after which the turn ends even though the recogniser has not answered the
        /// request to finalise (it is slow or broken). A recogniser that keeps up answers within
        /// tens of milliseconds of `minimumSilence`; one starved of CPU may need seconds, and
        /// ending the turn without its words would answer "sorry, I didn't catch that".
        public var maximumSilence: Duration = .milliseconds(2_500)
        /// Caller speech over the agent that interrupts it, unless it reads as a backchannel.
        public var bargeInSpeech: Duration = .milliseconds(300)
        /// Caller speech over the agent that interrupts it whatever the words.
        public var bargeInBackchannelLimit: Duration = .milliseconds(900)
        /// A gap in inbound audio longer than this is silence on the engine's own clock (a leg
        /// that sends no frames while its caller is quiet).
        public var inboundGap: Duration = .milliseconds(60)
        /// Nobody speaking this long: "are you still there?"; a second time: goodbye.
        public var silencePrompt: Duration = .seconds(7)
        /// The longest call.
        public var maximumCallDuration: Duration = .seconds(600)
        /// Words that acknowledge without taking the turn.
        public var backchannels: Set<String> = [
            "uh", "huh", "uh-huh", "mhm", "mm", "hmm", "yeah", "yes", "yep", "ok", "okay", "right", "sure", "i", "see", "alright",
        ]

        public init() {}
    }

    public enum Action: Sendable, Hashable {
        /// Stop the agent now: clear output, cancel synthesis and the policy's reply.
        case bargeIn
        /// Ask the recogniser to finish the utterance.
        case finalizeRecognizer
        /// The caller's turn is over; answer it.
        case endOfTurn(text: String)
        /// Nobody has spoken for a while.
        case silencePrompt(count: Int)
        /// The call is at its maximum length.
        case maximumDurationReached
    }

    private enum Caller: Sendable, Hashable {
        case quiet
        /// Speaking since `start`, last voiced at `lastVoiced`. `overAgent`: started while the agent spoke.
        case speaking(start: Duration, lastVoiced: Duration, overAgent: Bool)
    }

    public let configuration: Configuration
    private var detector: VoiceActivityDetector
    private var caller = Caller.quiet
    private var agentSpeaking = false
    /// The agent's utterance cannot be cut by speech.
    private var agentProtected = false
    /// Turns the caller finished over a protected utterance, answered when it ends.
    private var held: [String] = []
    /// When the last inbound frame ended.
    private var lastFrame: Duration = .zero
    /// Finals of the current turn.
    private var finals: [String] = []
    private var interim = ""
    private var turnOpen = false
    private var finalizeRequested = false
    /// The recogniser's next utterance was a backchannel over the agent: drop its words.
    private var discardUtterance = false
    private var lastActivity: Duration = .zero
    private var silencePrompts = 0
    private var maximumReported = false

    public init(configuration: Configuration = .init(), detector: VoiceActivityDetector.Configuration = .init()) {
        self.configuration = configuration
        self.detector = VoiceActivityDetector(configuration: detector)
    }

    /// The end of the last frame the detector found voiced.
    public private(set) var lastVoiced: Duration?

    /// Whether the agent holds the floor.
    public var isAgentSpeaking: Bool { self.agentSpeaking }

    // MARK: events

    /// Whether the agent's utterance cannot be cut by speech.
    public var isAgentProtected: Bool { self.agentSpeaking && self.agentProtected }

    /// The agent started an utterance; `protected` when speech must not cut it (the opening).
    public mutating func agentStarted(at now: Duration, protected: Bool = false) {
        self.agentSpeaking = true
        self.agentProtected = protected
        self.lastActivity = now
    }

    /// The utterance under way becomes protected (it turned out to be the closing line).
    public mutating func protectAgent() {
        guard self.agentSpeaking else { return }
        self.agentProtected = true
        if case .speaking(let start, let lastVoiced, true) = self.caller {
            self.caller = .speaking(start: start, lastVoiced: lastVoiced, overAgent: false)
            self.openTurn()
        }
    }

    /// The agent finished, or was cut. Speech that began over its last words and goes on is
    /// the caller's turn; a turn the caller finished over a protected line is answered now.
    public mutating func agentStopped(at now: Duration) -> [Action] {
        let wasProtected = self.agentSpeaking && self.agentProtected
        self.agentSpeaking = false
        self.agentProtected = false
        self.lastActivity = now
        if case .speaking(let start, let lastVoiced, true) = self.caller {
            self.caller = .speaking(start: start, lastVoiced: lastVoiced, overAgent: false)
            self.openTurn()
        }
        guard wasProtected, !self.held.isEmpty, case .quiet = self.caller else { return [] }
        let text = self.held.joined(separator: " ")
        self.held.removeAll()
        return [.endOfTurn(text: text)]
    }

    /// Forgets the caller's turn in progress and what was held: the engine acts on words
    /// itself (an opt-out over the opening) and the agent's line is cut.
    public mutating func takeOver(at now: Duration) {
        self.agentSpeaking = false
        self.agentProtected = false
        self.held.removeAll()
        self.turnOpen = false
        self.finals.removeAll()
        self.interim = ""
        self.finalizeRequested = false
        self.discardUtterance = true
        self.caller = .quiet
        self.lastActivity = now
    }

    /// The caller hung up: what they said in the turn still open (and any held over the
    /// agent), for the record; nil when nothing was said.
    public mutating func unfinishedTurn() -> String? {
        let words = self.held + (self.turnOpen ? self.finals + (self.finals.isEmpty && !self.interim.isEmpty ? [self.interim] : []) : [])
        self.held.removeAll()
        self.turnOpen = false
        self.finals.removeAll()
        self.interim = ""
        let text = words.joined(separator: " ")
        return text.isEmpty ? nil : text
    }

    /// Whether the caller is in a turn the recogniser has not ended yet.
    public var isCallerTurnOpen: Bool { self.turnOpen }

    /// The engine's clock, at least every 20 ms: when no inbound frame has come for longer than
    /// `inboundGap`, the gap counts as silence (without teaching the detector's noise floor).
    public mutating func clock(at now: Duration) -> [Action] {
        guard now - self.lastFrame > self.configuration.inboundGap else { return [] }
        return self.apply(.silence, at: now)
    }

    /// One inbound 20 ms frame, by level (dBFS), ending at `now`.
    public mutating func audioFrame(level: Double, at now: Duration) -> [Action] {
        self.lastFrame = now
        return self.apply(self.detector.process(level: level), at: now)
    }

    private mutating func apply(_ decision: VoiceActivityDetector.Decision, at now: Duration) -> [Action] {
        var actions: [Action] = []
        if decision != .silence { self.lastVoiced = now }
        switch (self.caller, decision) {
        case (.quiet, .speechStarted), (.quiet, .speech):
            let start = now - .milliseconds(20 * self.detector.configuration.onsetFrames)
            // Speech over a protected line is a turn of its own, held until the line ends.
            let overAgent = self.agentSpeaking && !self.agentProtected
            self.caller = .speaking(start: start, lastVoiced: now, overAgent: overAgent)
            if !overAgent { self.openTurn() }
            self.lastActivity = now
        case (.speaking(let start, _, let overAgent), .speech), (.speaking(let start, _, let overAgent), .speechStarted),
            (.speaking(let start, _, let overAgent), .voiced):
            self.caller = .speaking(start: start, lastVoiced: now, overAgent: overAgent)
            self.lastActivity = now
            if overAgent && self.agentSpeaking, self.shouldBargeIn(speech: now - start) {
                actions.append(self.bargeIn())
            }
        case (.speaking(let start, let lastVoiced, let overAgent), .silence):
            let silence = now - lastVoiced
            if overAgent && self.agentSpeaking {
                // A short burst over the agent that stopped: a backchannel. Keep talking, drop its words.
                if silence >= self.configuration.minimumSilence {
                    self.caller = .quiet
                    self.discardUtterance = true
                    self.interim = ""
                    actions.append(.finalizeRecognizer)
                }
            } else {
                if silence >= self.configuration.minimumSilence && !self.finalizeRequested {
                    self.finalizeRequested = true
                    actions.append(.finalizeRecognizer)
                }
                if silence >= self.configuration.maximumSilence {
                    actions += self.endTurn(at: now, speech: lastVoiced - start)
                }
            }
        default:
            break
        }
        if now - self.lastActivity >= self.configuration.silencePrompt, !self.agentSpeaking, case .quiet = self.caller, !self.turnOpen, self.held.isEmpty {
            self.silencePrompts += 1
            self.lastActivity = now
            actions.append(.silencePrompt(count: self.silencePrompts))
        }
        if now >= self.configuration.maximumCallDuration && !self.maximumReported {
            self.maximumReported = true
            actions.append(.maximumDurationReached)
        }
        return actions
    }

    /// An event from the recogniser.
    public mutating func recognizer(_ event: RecognitionEvent, at now: Duration) -> [Action] {
        switch event {
        case .speechStarted:
            return []
        case .interim(let text):
            self.interim = text
            if case .speaking(let start, _, true) = self.caller, self.agentSpeaking, self.shouldBargeIn(speech: now - start) {
                return [self.bargeIn()]
            }
            return []
        case .final(let text):
            if !self.discardUtterance && self.turnOpen { self.finals.append(text) }
            self.interim = ""
            return []
        case .utteranceEnd:
            if self.discardUtterance {
                self.discardUtterance = false
                self.finals.removeAll()
                return []
            }
            guard self.turnOpen else { return [] }
            if case .speaking(let start, let lastVoiced, _) = self.caller {
                // The recogniser's end of utterance ends the turn once the caller has paused.
                guard now - lastVoiced >= .milliseconds(100) || self.finalizeRequested else { return [] }
                return self.endTurn(at: now, speech: lastVoiced - start)
            }
            return self.endTurn(at: now, speech: .zero)
        }
    }

    // MARK: rules

    private func shouldBargeIn(speech: Duration) -> Bool {
        if speech >= self.configuration.bargeInBackchannelLimit { return true }
        guard speech >= self.configuration.bargeInSpeech else { return false }
        let words = self.interim.lowercased().split(separator: " ").map(String.init)
        // No words yet, or any word that is not a backchannel: a real interruption.
        return words.isEmpty || words.contains { !self.configuration.backchannels.contains($0) }
    }

    private mutating func bargeIn() -> Action {
        self.agentSpeaking = false
        if case .speaking(let start, let lastVoiced, _) = self.caller {
            self.caller = .speaking(start: start, lastVoiced: lastVoiced, overAgent: false)
        }
        self.openTurn()
        return .bargeIn
    }

    private mutating func openTurn() {
        guard !self.turnOpen else { return }
        self.turnOpen = true
        self.finalizeRequested = false
        self.discardUtterance = false
        self.finals.removeAll()
        self.silencePrompts = 0
    }

    /// The held turns and this one, as one caller turn.
    private mutating func takeHeld(_ text: String) -> String {
        guard !self.held.isEmpty else { return text }
        defer { self.held.removeAll() }
        return (self.held + (text.isEmpty ? [] : [text])).joined(separator: " ")
    }

    private mutating func endTurn(at now: Duration, speech: Duration) -> [Action] {
        guard self.turnOpen else {
            self.caller = .quiet
            return []
        }
        let text = (self.finals + (self.finals.isEmpty && !self.interim.isEmpty ? [self.interim] : [])).joined(separator: " ")
        let finalized = self.finalizeRequested
        self.turnOpen = false
        self.caller = .quiet
        self.finals.removeAll()
        self.interim = ""
        self.finalizeRequested = false
        self.lastActivity = now
        var actions: [Action] = []
        if self.agentSpeaking && self.agentProtected {
            // Said over a protected line: answered once the line is over.
            if !text.isEmpty { self.held.append(text) }
        } else if !text.isEmpty || speech >= .milliseconds(500) || !self.held.isEmpty {
            // Noise that never became words is not a turn. The reply goes first: the
            // recogniser's flush does not hold it up.
            actions.append(.endOfTurn(text: self.takeHeld(text)))
        }
        if !finalized { actions.append(.finalizeRecognizer) }
        return actions
    }
}
