import Speech
import Testing

@testable import Conversation

/// Drives the turn rules frame by frame: 20 ms per frame, levels in dBFS.
struct TurnDriver {
    var machine = TurnTaking()
    var now: Duration = .zero
    var actions: [(Duration, TurnTaking.Action)] = []

    static let quiet = -65.0
    static let voice = -20.0

    mutating func frames(_ count: Int, level: Double) {
        for _ in 0..<count {
            self.now += .milliseconds(20)
            for action in self.machine.audioFrame(level: level, at: self.now) { self.actions.append((self.now, action)) }
        }
    }

    mutating func recognizer(_ event: RecognitionEvent) {
        for action in self.machine.recognizer(event, at: self.now) { self.actions.append((self.now, action)) }
    }

    var kinds: [TurnTaking.Action] { self.actions.map(\.1) }
}

@Suite struct TurnTakingTests {
    @Test func endsTheTurnWhenTheRecogniserConfirmsAfterTheMinimumSilence() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.frames(40, level: TurnDriver.voice)  // 0.8 s of speech
        driver.recognizer(.speechStarted)
        driver.frames(19, level: TurnDriver.quiet)
        #expect(driver.kinds.isEmpty)
        driver.frames(2, level: TurnDriver.quiet)  // 400 ms of silence
        #expect(driver.kinds == [.finalizeRecognizer])
        driver.recognizer(.final("call me tomorrow"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds == [.finalizeRecognizer, .endOfTurn(text: "call me tomorrow")])
    }

    @Test func aRecogniserThatEndsTheTurnFirstIsFlushedAfterTheReplyStarts() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.frames(40, level: TurnDriver.voice)
        driver.recognizer(.speechStarted)
        driver.frames(10, level: TurnDriver.quiet)  // 200 ms: before the silence rule finalizes
        driver.recognizer(.final("call me tomorrow"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds == [.endOfTurn(text: "call me tomorrow"), .finalizeRecognizer])
    }

    @Test func waitsForASlowRecogniserUpToTheMaximumSilence() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.frames(30, level: TurnDriver.voice)
        driver.recognizer(.interim("hello there"))
        driver.frames(100, level: TurnDriver.quiet)  // 2 s: still waiting for the final words
        #expect(driver.kinds == [.finalizeRecognizer])
        driver.frames(25, level: TurnDriver.quiet)  // 2.5 s: the turn ends with what was heard
        #expect(driver.kinds == [.finalizeRecognizer, .endOfTurn(text: "hello there")])
        #expect(driver.actions.last?.0 == .milliseconds(20 * (25 + 30 + 125)))
    }

    @Test func interruptsTheAgentOnRealSpeechButNotOnABackchannel() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.machine.agentStarted(at: driver.now)
        // "uh-huh": 240 ms, then silence. No barge-in, and its words are dropped.
        driver.frames(12, level: TurnDriver.voice)
        driver.recognizer(.interim("uh huh"))
        driver.frames(25, level: TurnDriver.quiet)
        #expect(driver.kinds == [.finalizeRecognizer])
        driver.recognizer(.final("uh huh"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.machine.isAgentSpeaking)

        // "wait, how much is it": barge-in once 300 ms of speech are in.
        driver.frames(3, level: TurnDriver.voice)
        driver.recognizer(.interim("wait"))
        driver.frames(12, level: TurnDriver.voice)
        #expect(driver.kinds.last == .bargeIn)
        #expect(!driver.machine.isAgentSpeaking)
        driver.frames(20, level: TurnDriver.voice)
        driver.frames(20, level: TurnDriver.quiet)
        driver.recognizer(.final("wait how much is it"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds.suffix(2) == [.finalizeRecognizer, .endOfTurn(text: "wait how much is it")])
    }

    @Test func aLongBackchannelStillInterrupts() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.machine.agentStarted(at: driver.now)
        driver.recognizer(.interim("yeah yeah yeah"))
        driver.frames(44, level: TurnDriver.voice)
        #expect(driver.kinds == [])
        driver.frames(2, level: TurnDriver.voice)
        #expect(driver.kinds == [.bargeIn])
    }

    /// The opening (greeting, disclosure, how to opt out) is said in full: a callee who says
    /// "Hello?" at 0.3 s and again at 1.3 s does not cut it, and is answered once it is over.
    @Test func speechOverTheProtectedOpeningNeverCutsItAndIsAnsweredAfter() {
        var driver = TurnDriver()
        driver.machine.agentStarted(at: driver.now, protected: true)
        driver.frames(15, level: TurnDriver.quiet)
        driver.frames(25, level: TurnDriver.voice)  // "hello?" at 0.3 s
        driver.recognizer(.interim("hello"))
        driver.frames(25, level: TurnDriver.quiet)
        driver.recognizer(.final("hello"))
        driver.recognizer(.utteranceEnd)
        driver.frames(50, level: TurnDriver.voice)  // "hello, who is this?" at 1.3 s, a full second long
        driver.recognizer(.interim("hello who is this"))
        driver.frames(30, level: TurnDriver.quiet)
        driver.recognizer(.final("hello who is this"))
        driver.recognizer(.utteranceEnd)
        driver.frames(300, level: TurnDriver.quiet)  // the rest of the disclosure: no prompt, no turn, no cut
        #expect(!driver.kinds.contains(.bargeIn))
        #expect(!driver.kinds.contains { if case .endOfTurn = $0 { true } else { false } })
        #expect(driver.machine.isAgentProtected)
        let after = driver.machine.agentStopped(at: driver.now)
        #expect(after == [.endOfTurn(text: "hello hello who is this")])
    }

    @Test func aLineProtectedOnceItTurnsOutToBeTheClosingIsNotCutEither() {
        var driver = TurnDriver()
        driver.machine.agentStarted(at: driver.now)
        driver.machine.protectAgent()
        driver.frames(5, level: TurnDriver.quiet)
        driver.recognizer(.interim("okay bye then"))
        driver.frames(60, level: TurnDriver.voice)
        #expect(!driver.kinds.contains(.bargeIn))
        #expect(driver.machine.isAgentSpeaking)
    }

    /// A leg that sends no frames while its caller is quiet (DTX, a Local channel without
    /// transmit_silence): the turn still ends, and the silence still gets its prompt.
    @Test func theEnginesClockEndsATurnAndPromptsWithoutInboundFrames() {
        var driver = TurnDriver()
        driver.frames(25, level: TurnDriver.quiet)
        driver.frames(40, level: TurnDriver.voice)
        // No frame from here on: only the clock.
        for _ in 0..<30 {
            driver.now += .milliseconds(50)
            for action in driver.machine.clock(at: driver.now) { driver.actions.append((driver.now, action)) }
        }
        #expect(driver.kinds == [.finalizeRecognizer])
        driver.recognizer(.final("yes"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds == [.finalizeRecognizer, .endOfTurn(text: "yes")])
        for _ in 0..<150 {
            driver.now += .milliseconds(50)
            for action in driver.machine.clock(at: driver.now) { driver.actions.append((driver.now, action)) }
        }
        #expect(driver.kinds.last == .silencePrompt(count: 1))
    }

    @Test func theClockDoesNothingWhileFramesArrive() {
        var machine = TurnTaking()
        _ = machine.audioFrame(level: TurnDriver.voice, at: .milliseconds(1_000))
        #expect(machine.clock(at: .milliseconds(1_040)).isEmpty)
    }

    @Test func aCallerWhoHangsUpMidTurnLeavesItsWords() {
        var driver = TurnDriver()
        driver.frames(10, level: TurnDriver.quiet)
        driver.frames(40, level: TurnDriver.voice)
        driver.recognizer(.interim("call me back"))
        #expect(driver.machine.isCallerTurnOpen)
        #expect(driver.machine.unfinishedTurn() == "call me back")
        #expect(driver.machine.unfinishedTurn() == nil)
    }

    /// Speech that began over the agent's last words and goes on after them is the caller's
    /// turn. (It once left the rules waiting for ever: no turn, no prompt, a deaf call.)
    @Test func speechThatOutlastsTheAgentsLineIsTheCallersTurn() {
        var driver = TurnDriver()
        driver.frames(5, level: TurnDriver.quiet)
        driver.machine.agentStarted(at: driver.now, protected: true)
        driver.frames(60, level: TurnDriver.quiet)
        // "yes please" over the greeting's last 0.4 s: "yes" alone is a backchannel, no barge-in.
        driver.recognizer(.interim("yes"))
        driver.frames(20, level: TurnDriver.voice)
        _ = driver.machine.agentStopped(at: driver.now)
        driver.frames(20, level: TurnDriver.voice)
        #expect(driver.kinds.isEmpty)
        driver.frames(20, level: TurnDriver.quiet)
        #expect(driver.kinds == [.finalizeRecognizer])
        driver.recognizer(.final("yes please"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds == [.finalizeRecognizer, .endOfTurn(text: "yes please")])

        // The next turn is heard as any other.
        driver.frames(50, level: TurnDriver.quiet)
        driver.frames(30, level: TurnDriver.voice)
        driver.frames(20, level: TurnDriver.quiet)
        driver.recognizer(.final("how much"))
        driver.recognizer(.utteranceEnd)
        #expect(driver.kinds.suffix(2) == [.finalizeRecognizer, .endOfTurn(text: "how much")])
    }

    /// A backchannel over the agent's line that ends after it is still only a backchannel when
    /// the recogniser hears nothing in it: the turn's end without words is not a turn.
    @Test func noiseThatOutlastsTheAgentsLineIsNoTurn() {
        var driver = TurnDriver()
        driver.machine.agentStarted(at: driver.now)
        driver.frames(60, level: TurnDriver.quiet)
        driver.frames(5, level: TurnDriver.voice)
        _ = driver.machine.agentStopped(at: driver.now)
        driver.frames(5, level: TurnDriver.voice)
        driver.frames(130, level: TurnDriver.quiet)
        #expect(driver.kinds == [.finalizeRecognizer])
        // And the rules still prompt a silent line.
        driver.frames(350, level: TurnDriver.quiet)
        #expect(driver.kinds.last == .silencePrompt(count: 1))
    }

    @Test func promptsAfterSilenceAndAgainAfterMore() {
        var driver = TurnDriver()
        driver.machine.agentStarted(at: driver.now)
        driver.frames(50, level: TurnDriver.quiet)
        _ = driver.machine.agentStopped(at: driver.now)
        driver.frames(349, level: TurnDriver.quiet)
        #expect(driver.kinds.isEmpty)
        driver.frames(1, level: TurnDriver.quiet)
        #expect(driver.kinds == [.silencePrompt(count: 1)])
        driver.frames(350, level: TurnDriver.quiet)
        #expect(driver.kinds == [.silencePrompt(count: 1), .silencePrompt(count: 2)])
    }

    @Test func theNoiseFloorFollowsANoisyLine() {
        var detector = VoiceActivityDetector()
        // A steady -40 dBFS hiss is not speech once the floor has caught up.
        var decisions: [VoiceActivityDetector.Decision] = []
        for _ in 0..<500 { decisions.append(detector.process(level: -40)) }
        #expect(decisions.suffix(100).allSatisfy { $0 == .silence })
        #expect(detector.noiseFloor > -45)
        // Speech 15 dB above it is.
        let onset = (0..<3).map { _ in detector.process(level: -25) }
        #expect(onset == [.voiced, .voiced, .speechStarted])
    }
}
