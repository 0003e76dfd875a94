import Speech

/// Turn-taking rules of one call, as a value: who speaks, when the caller's turn ends, when
/// the caller interrupts the agent, when silence needs a prompt. Time is the call's offset,
/// passed in with every event, so the rules are tested without clocks.
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
        /// The start of the greeting that cannot be interrupted.
        public var protectedGreeting: Duration = .seconds(1)
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
    private var agentProtectedUntil: Duration = .zero
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

    /// The agent started an utterance; `protected` for the greeting.
    public mutating func agentStarted(at now: Duration, protected: Bool = false) {
        self.agentSpeaking = true
        self.agentProtectedUntil = protected ? now + self.configuration.protectedGreeting : .zero
        self.lastActivity = now
    }

    /// The agent finished, or was cut. Speech that began over its last words and goes on is
    /// the caller's turn.
    public mutating func agentStopped(at now: Duration) {
        self.agentSpeaking = false
        self.lastActivity = now
        if case .speaking(let start, let lastVoiced, true) = self.caller {
            self.caller = .speaking(start: start, lastVoiced: lastVoiced, overAgent: false)
            self.openTurn()
        }
    }

    /// One inbound 20 ms frame, by level (dBFS), ending at `now`.
    public mutating func audioFrame(level: Double, at now: Duration) -> [Action] {
        var actions: [Action] = []
        let decision = self.detector.process(level: level)
        if decision != .silence { self.lastVoiced = now }
        switch (self.caller, decision) {
        case (.quiet, .speechStarted), (.quiet, .speech):
            let start = now - .milliseconds(20 * self.detector.configuration.onsetFrames)
            // Speech over the greeting's protected start is not heard as anything.
            if self.agentSpeaking && now < self.agentProtectedUntil { break }
            self.caller = .speaking(start: start, lastVoiced: now, overAgent: self.agentSpeaking)
            if !self.agentSpeaking { self.openTurn() }
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
        if now - self.lastActivity >= self.configuration.silencePrompt, !self.agentSpeaking, case .quiet = self.caller, !self.turnOpen {
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
        // Noise that never became words is not a turn. The reply goes first: the recogniser's
        // flush does not hold it up.
        if !text.isEmpty || speech >= .milliseconds(500) { actions.append(.endOfTurn(text: text)) }
        if !finalized { actions.append(.finalizeRecognizer) }
        return actions
    }
}
