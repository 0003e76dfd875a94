import AudioSocket
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator
import Speech
import TestSupport
import Testing

@testable import Conversation

/// Keeps every record the engine writes.
final class MemorySink: CallRecordSink {
    let updates = NIOLockedValueBox<[CallRecord]>([])
    let finished = NIOLockedValueBox<[CallRecord]>([])

    func update(_ record: CallRecord) async { self.updates.withLockedValue { $0.append(record) } }
    func finish(_ record: CallRecord) async { self.finished.withLockedValue { $0.append(record) } }

    /// The first finished record, once there is one.
    func firstFinished() async throws -> CallRecord {
        try await eventually { self.finished.withLockedValue { !$0.isEmpty } }
        return try #require(self.finished.withLockedValue { $0.first })
    }
}

/// The event loop each provider call ran on (nil: none), by role.
final class LoopWitness: Sendable {
    let seen = NIOLockedValueBox<[String: Set<ObjectIdentifier?>]>([:])

    func note(_ role: String, loop: (any EventLoop)? = MultiThreadedEventLoopGroup.currentEventLoop) {
        self.seen.withLockedValue { _ = $0[role, default: []].insert(loop.map(ObjectIdentifier.init)) }
    }

    struct Recognizer: SpeechRecognizer {
        let base: any SpeechRecognizer
        let witness: LoopWitness

        func open(_ options: RecognitionOptions) async throws -> any RecognitionSession {
            self.witness.note("recognition")
            return try await self.base.open(options)
        }
    }

    /// Notes where it is asked to speak, and the loop of the call it speaks to.
    struct Synthesizer: SpeechSynthesizer {
        let base: any SpeechSynthesizer
        let witness: LoopWitness
        var voice: String { self.base.voice }

        func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> { self.base.synthesize(text) }

        func synthesize(_ text: String, into sink: some SpeechSink) async throws {
            self.witness.note("synthesis")
            self.witness.note("call", loop: sink.executor as? any EventLoop)
            try await self.base.synthesize(text, into: sink)
        }
    }

    struct Sink: CallRecordSink {
        let base: MemorySink
        let witness: LoopWitness

        func update(_ record: CallRecord) async {
            self.witness.note("record")
            await self.base.update(record)
        }

        func finish(_ record: CallRecord) async {
            self.witness.note("record")
            await self.base.finish(record)
        }
    }
}

/// The whole engine over real sockets: the AudioSocket server, espeak-ng for the agent,
/// pocketsphinx listening, and a simulated caller speaking flite lines in real time.
@Suite(.serialized, .timeLimit(.minutes(2))) struct EngineLoopbackTests {
    static let recognizer = PocketSphinxRecognizer(configuration: .init(maximumSessions: 2, postSpeechFrames: 30))

    func withEngine(
        lead: [String: String] = ["first_name": "Ana", "city": "Springfield"],
        turnTaking: TurnTaking.Configuration = .init(),
        witness: LoopWitness? = nil,
        voicemail: String? = nil,
        _ body: @Sendable (Int, MemorySink) async throws -> Void
    ) async throws {
        var template = try PitchTemplate.load(path: PitchTemplateTests.examplePath)
        template.voicemail = voicemail
        let sink = MemorySink()
        var providers = ConversationProviders(recognizer: Self.recognizer, synthesizer: EspeakSynthesizer(), sink: sink, turnTaking: turnTaking)
        if let witness {
            providers.recognizer = LoopWitness.Recognizer(base: providers.recognizer, witness: witness)
            providers.synthesizer = LoopWitness.Synthesizer(base: providers.synthesizer, witness: witness)
            providers.sink = LoopWitness.Sink(base: sink, witness: witness)
        }
        let engine = ConversationEngine(
            resolver: AnyCallResolver(template: template, lead: lead, timeZone: TimeZone(identifier: "America/Chicago")!),
            providers: providers,
            logger: Logger(label: "test")
        )
        let port = PortWaiter()
        let server = AudioSocketServer(configuration: .init(port: 0, onListening: { port.set($0.port) }), application: engine)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await body(try await port.wait(), sink)
            group.cancelAll()
        }
    }

    @Test func aCallerWhoInterruptsTheGreetingToOptOutIsPutOnTheListAtOnce() async throws {
        let optOut = try await FliteSynthesizer().render("please remove me from your list")
        try await self.withEngine { port, sink in
            let script = CallerScript(steps: [.pause(.milliseconds(2_500), sendSilence: true), .say(optOut)], maximumDuration: .seconds(40))
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .engineHungUp)

            let record = try await sink.firstFinished()
            let json = String(decoding: try record.json(), as: UTF8.self)
            #expect(record.outcome == .doNotCall, "\(json)")
            #expect(record.actions.contains(.addToDoNotCall))
            #expect(record.endedBy == "agent")
            // The greeting was cut: the record keeps only what went out. (Greeting latency is a benchmark figure.)
            #expect(record.firstAgentAudioMs != nil)
            let greeting = try #require(record.turns.first)
            #expect(greeting.speaker == .agent && greeting.interrupted)
            #expect(greeting.text.hasPrefix("Hi Ana, this is Alex from Bright Solar."))
            let heard = try #require(greeting.heard)
            #expect(!heard.isEmpty && heard.count < greeting.text.count && greeting.text.hasPrefix(heard))
            // Only an opt-out cuts the opening, and the record says so.
            #expect(record.disclosure?.heardInFull == false && record.disclosure?.cutBy == "opt_out")
            // The caller's words, heard by pocketsphinx, and the turn's timeline in order.
            let caller = try #require(record.turns.first { $0.speaker == .caller })
            #expect(caller.text.contains("remove me"), "\(json)")
            let timeline = try #require(caller.timeline)
            #expect(timeline.speechEndMs! <= timeline.endpointMs!)
            #expect(timeline.endpointMs! <= timeline.policyFirstTextMs!)
            #expect(timeline.policyFirstTextMs! <= timeline.ttsFirstAudioMs!)
            #expect(timeline.ttsFirstAudioMs! <= timeline.firstFrameOutMs!)
            // Offline, nothing was waited for on a provider.
            #expect(timeline.llmTimeToFirstTokenMs == nil && timeline.ttsTimeToFirstByteMs == nil)
            // The closing line in full, then the engine's hang-up.
            let closing = try #require(record.turns.last)
            #expect(closing.speaker == .agent && !closing.interrupted && closing.text.contains("won't be called again"))
            #expect(record.underruns == 0)
            // The opt-out was on record before the call ended.
            #expect(sink.updates.withLockedValue { $0.contains { $0.actions.contains(.addToDoNotCall) && $0.endedAt == nil } })
            try await eventually { Self.recognizer.liveSessions == 0 }
        }
    }

    @Test func aCallerPersonaObjectsThenOptsOutByVoice() async throws {
        let objection = try await FliteSynthesizer().render("it's too expensive")
        let optOut = try await FliteSynthesizer().render("please remove me from your list")
        try await self.withEngine { port, sink in
            let script = CallerScript(
                steps: [.waitForPause(.milliseconds(900)), .say(objection), .waitForPause(.milliseconds(900)), .say(optOut)],
                maximumDuration: .seconds(90)
            )
            let callID = UUID()
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: callID, script: script).run()
            #expect(recording.ending == .engineHungUp)
            let record = try await sink.firstFinished()
            #expect(record.callID == callID)
            // Times, counters, ids and dates vary from run to run; the rest is the record's golden shape.
            let json = String(decoding: try record.json(), as: UTF8.self)
            let stable = json
                .replacing(#/"(\w+(Ms|At)|framesSent|underruns|lateFrames)" : [^,\n]+/#) { "\"\($0.1)\" : \"<\($0.1)>\"" }
                .replacingOccurrences(of: callID.uuidString, with: "<call id>")
            let mismatch = goldenMismatch(stable, name: "persona-record.json")
            #expect(mismatch == nil, "\(mismatch ?? "")")
            #expect(record.underruns == 0 && record.lateFrames == 0)
            try await eventually { Self.recognizer.liveSessions == 0 }
        }
    }

    @Test func aCallerWhoListensAsksAQuestionThenPressesTheOptOutKeyDuringTheAnswer() async throws {
        let question = try await FliteSynthesizer().render("how much does it cost")
        try await self.withEngine { port, sink in
            let script = CallerScript(
                // The answer takes about 6 s; the key goes 3 s after the question.
                steps: [.waitForPause(.milliseconds(900)), .say(question), .pause(.seconds(3), sendSilence: true), .dtmf("9")],
                maximumDuration: .seconds(60)
            )
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .engineHungUp)

            let record = try await sink.firstFinished()
            let json = String(decoding: try record.json(), as: UTF8.self)
            // Greeting and disclosure in full, the question, the FAQ answer cut by the key, the closing.
            #expect(record.turns.map(\.speaker) == [.agent, .caller, .agent, .agent], "\(json)")
            guard record.turns.count == 4 else { return }
            #expect(!record.turns[0].interrupted && record.turns[0].text.contains("automated assistant"))
            #expect(record.turns[1].text.contains("how much"), "\(json)")
            #expect(record.turns[2].text.hasPrefix("The assessment is completely free") && record.turns[2].interrupted, "\(json)")
            #expect(record.turns[3].text.contains("won't be called again") && !record.turns[3].interrupted)
            #expect(record.dtmf.map(\.digit) == ["9"])
            #expect(record.outcome == .doNotCall)
            let timeline = try #require(record.turns[1].timeline)
            #expect(timeline.sttFinalMs != nil && timeline.firstFrameOutMs != nil)
            #expect(record.underruns == 0)
        }
    }

    /// An answering machine without AMD in front: its greeting says "we will call you back",
    /// which must not become a callback; the record tone ends the call as voicemail.
    @Test func anAnsweringMachinesGreetingAndToneAreVoicemailNotACallback() async throws {
        let greeting = try await FliteSynthesizer().render("Hi, this is Dan. I can't come to the phone, I will call you back")
        try await self.withEngine { port, sink in
            let script = CallerScript(
                steps: [.say(greeting), .pause(.milliseconds(300), sendSilence: true), .say(TestAudio.tone(frequency: 850, duration: .milliseconds(500)))],
                maximumDuration: .seconds(40))
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .engineHungUp)
            let record = try await sink.firstFinished()
            let json = String(decoding: try record.json(), as: UTF8.self)
            #expect(record.outcome == .voicemail, "\(json)")
            #expect(!record.actions.contains { if case .scheduleCallback = $0 { true } else { false } }, "\(json)")
            #expect(record.endedBy == "agent")
        }
    }

    static let voicemail = "Hi {{first_name}}, this is {{agent_name}}, an automated assistant from {{company}}, about a free solar assessment. Goodbye."

    /// Where the first voiced 20 ms frame of the engine's audio is, at or after `from` (samples).
    static func firstVoiced(_ samples: [Int16], from: Int) -> Int? {
        stride(from: from, to: samples.count - 160, by: 160).first { VoiceActivityDetector.level(of: Array(samples[$0..<$0 + 160])) > -45 }
    }

    /// With the template's `voicemail:` message: the greeting stops the opening, the record
    /// tone is waited out, and the message starts when it ends, is said in full, then the call ends.
    @Test func aMessageIsLeftAfterTheRecordTone() async throws {
        let greeting = try await FliteSynthesizer().render("Hi, you've reached Sam. Please leave a message after the tone.")
        let tone = TestAudio.tone(frequency: 850, duration: .milliseconds(800))
        try await self.withEngine(voicemail: Self.voicemail) { port, sink in
            let script = CallerScript(
                steps: [.say(greeting), .pause(.milliseconds(300), sendSilence: true), .say(tone), .pause(.seconds(20), sendSilence: true)],
                maximumDuration: .seconds(40))
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .engineHungUp)
            let record = try await sink.firstFinished()
            let json = String(decoding: try record.json(), as: UTF8.self)
            #expect(record.outcome == .voicemail, "\(json)")
            #expect(record.disclosure?.cutBy == "voicemail", "\(json)")
            let message = try #require(record.voicemailMessage, "\(json)")
            #expect(message.after == "tone" && message.complete == true, "\(json)")
            let left = try #require(record.turns.last { $0.speaker == .agent })
            #expect(left.text == "Hi Ana, this is Alex, an automated assistant from Bright Solar, about a free solar assessment. Goodbye." && !left.interrupted)
            // In what the machine recorded: quiet from just after the tone began, the message from just after it ended.
            let toneStart = greeting.count + 2_400
            let toneEnd = toneStart + tone.count
            let voiced = try #require(Self.firstVoiced(recording.receivedAudio, from: toneStart + 2_400))
            #expect(voiced >= toneEnd - 800 && voiced <= toneEnd + 8_000, "message at \(voiced), tone ended at \(toneEnd)")
        }
    }

    /// A machine with no tone: the message starts after its greeting and 1 s of quiet.
    @Test func aMessageIsLeftAfterAGreetingWithNoToneAndASecondOfQuiet() async throws {
        let greeting = try await FliteSynthesizer().render("Hi, you've reached Sam. Please leave a message.")
        try await self.withEngine(voicemail: Self.voicemail) { port, sink in
            let script = CallerScript(steps: [.say(greeting), .pause(.seconds(20), sendSilence: true)], maximumDuration: .seconds(40))
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .engineHungUp)
            let record = try await sink.firstFinished()
            let json = String(decoding: try record.json(), as: UTF8.self)
            #expect(record.outcome == .voicemail, "\(json)")
            let message = try #require(record.voicemailMessage, "\(json)")
            #expect(message.after == "quiet" && message.complete == true, "\(json)")
            // From the greeting's last voiced 20 ms frame (flite ends a line with some silence).
            let lastVoiced = stride(from: 0, to: greeting.count - 160, by: 160).reversed().first { VoiceActivityDetector.level(of: Array(greeting[$0..<$0 + 160])) > -45 } ?? 0
            let greetingEndMs = (lastVoiced + 160) / 8
            // A second of quiet by the engine's own voice detector; this one may place the end a frame or so apart.
            #expect(message.startMs >= greetingEndMs + 900, "\(json)")
            #expect(recording.receivedAudio.count > (greeting.count + 8_000) && Self.firstVoiced(recording.receivedAudio, from: greeting.count + 8_000) != nil)
        }
    }

    @Test func aSilentCallerIsAskedOnceThenLetGo() async throws {
        var rules = TurnTaking.Configuration()
        rules.silencePrompt = .seconds(2)
        try await self.withEngine(turnTaking: rules) { port, sink in
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: .listen).run()
            #expect(recording.ending == .engineHungUp)
            let record = try await sink.firstFinished()
            #expect(record.turns.map(\.speaker) == [.agent, .agent, .agent])
            #expect(record.turns.dropFirst().map(\.text) == ["Are you still there?", "It seems this isn't a good time. Thank you, goodbye."])
            #expect(record.outcome == .noConversation)
            #expect(record.endedBy == "agent")
        }
    }

    @Test func aCallerWhoHangsUpMidSentenceReleasesEverything() async throws {
        let witness = LoopWitness()
        try await self.withEngine(witness: witness) { port, sink in
            let script = CallerScript(steps: [.pause(.milliseconds(1_500), sendSilence: true), .hangup])
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: script).run()
            #expect(recording.ending == .callerHungUp)
            let record = try await sink.firstFinished()
            #expect(record.endedBy == "caller")
            #expect(record.outcome == .noConversation)
            #expect(record.turns.first?.interrupted == true)
            try await eventually { Self.recognizer.liveSessions == 0 }
        }
        // The call's own work ran on its event loop: opening the recogniser, speaking, keeping the record.
        let seen = witness.seen.withLockedValue { $0 }
        let call = try #require(seen["call"]?.first)
        #expect(call != nil && seen["call"]?.count == 1)
        for role in ["recognition", "synthesis", "record"] { #expect(seen[role] == [call], "\(role)") }
    }
}
