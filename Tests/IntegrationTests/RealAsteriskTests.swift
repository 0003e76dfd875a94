import CampaignCore
import CampaignStore
import Conversation
import Foundation
import GRDB
import Logging
import PBXSimulator
import Speech
import Testing

@testable import CampaignApp

/// Whole campaigns through a real Asterisk 22: AMI on a socket, Local channels whose callee
/// halves run dialplan the test writes (Playback of lines rendered by our own TTS, turns taken
/// with WaitForNoise/WaitForSilence as a person takes them), AudioSocket to the embedded engine.
/// What the callee heard is checked in MixMonitor's recording, not only in our record.
@Suite(.serialized, .timeLimit(.minutes(6))) struct RealAsteriskTests {
    /// Monday 13 July 2026, 14:00 in New York.
    static let mondayAfternoonNewYork = try! Date("2026-07-13T18:00:00Z", strategy: .iso8601)

    /// One callee: its number (what `Local/{digits}@callees` dials), its dialplan after
    /// `Answer()`, and the outcome the campaign must store for it.
    struct Callee {
        var digits: String
        var steps: [String]
        var outcome: String
        var answers = true
    }

    @Test func callersWeDidNotMakeGetTheirOutcomesAndHearTheWholeDisclosureOnALegThatSendsNoFramesWhenQuiet() async throws {
        try await self.campaign(transmitSilence: false)
    }

    @Test func theSameCallersOnALegThatSendsSilence() async throws {
        try await self.campaign(transmitSilence: true)
    }

    func campaign(transmitSilence: Bool) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cex-real-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func line(_ name: String, _ text: String) async throws -> String { try await RealAsterisk.render(text, as: name, in: folder) }
        let hello = try await line("hello", "Hello?")
        let yes = try await line("yes", "Yes, I have a minute.")
        let okay = try await line("okay", "Okay, go on.")
        let book = try await line("book", "Yes please, book it.")
        let callback = try await line("callback", "I'm busy right now, call me back tomorrow.")
        let stop = try await line("stop", "Please stop calling me.")
        let machine = try await line("machine", "Hi, you've reached Sam. Please leave a message after the tone.")
        let beep = try RealAsterisk.save(TestAudio.tone(frequency: 1_000, duration: .milliseconds(600)), as: "beep", in: folder)

        /// Waits for the agent to speak, then for it to pause, as a person waits for their turn.
        let turn = ["WaitForNoise(200,1,30)", "WaitForSilence(1200,1,30)"]
        let callees = [
            Callee(digits: "12125550101", steps: turn + ["Playback(\(yes))"] + turn + ["Playback(\(okay))"] + turn + ["Playback(\(book))", "Wait(15)"], outcome: "interested"),
            // Speaks over the greeting at 0.3 s and again at 1.3 s, then takes turns.
            Callee(
                digits: "12125550102",
                steps: ["Wait(0.3)", "Playback(\(hello))", "Wait(0.4)", "Playback(\(hello))"] + turn + ["Playback(\(yes))"] + turn + ["Playback(\(okay))"] + turn
                    + ["Playback(\(book))", "Wait(15)"],
                outcome: "interested"),
            // Asks for a callback and hangs up at once, before any reply.
            Callee(digits: "12125550103", steps: turn + ["Playback(\(callback))", "Hangup()"], outcome: "callback"),
            Callee(digits: "12125550104", steps: turn + ["Playback(\(stop))", "Wait(10)"], outcome: "do_not_call"),
            // Answers and never says a word.
            Callee(digits: "12125550105", steps: ["Wait(45)"], outcome: "no_conversation"),
            Callee(digits: "12125550106", steps: ["Busy(10)"], outcome: "busy", answers: false),
            Callee(digits: "12125550107", steps: ["Congestion(10)"], outcome: "congestion", answers: false),
            // An answering machine: greeting and record tone, then it records.
            Callee(digits: "12125550108", steps: ["Playback(\(machine))", "Playback(\(beep))", "Wait(25)"], outcome: "voicemail"),
        ]
        let machines: Set = ["12125550108"]

        let enginePort = try await RealAsterisk.freePort()
        var dialplan = """
            [ai-outbound]
            exten => s,1,AudioSocket(${CEX_CALL_ID},127.0.0.1:\(enginePort))
             same => n,Hangup()

            [callees]

            """
        for callee in callees {
            dialplan += "exten => \(callee.digits),1,NoOp()\n"
            if callee.answers {
                dialplan += " same => n,Answer()\n"
                // What the callee heard: the frames its half read, which are what the agent sent.
                dialplan += " same => n,MixMonitor(\(folder.path)/mix-\(callee.digits).wav,r(\(folder.path)/heard-\(callee.digits).wav))\n"
            }
            for step in callee.steps { dialplan += " same => n,\(step)\n" }
            dialplan += " same => n,Hangup()\n"
        }
        let asterisk = try await RealAsterisk(dialplan: dialplan, transmitSilence: transmitSilence)
        var stopped = false
        defer { if !stopped { Task { await asterisk.stop() } } }

        let leads = "phone,first_name,city\n" + callees.enumerated().map { "+\($1.digits),Lead\($0 + 1),Springfield\n" }.joined()
        try leads.write(to: folder.appendingPathComponent("leads.csv"), atomically: true, encoding: .utf8)
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // The example template, with a message to leave on answering machines.
        let voicemail = "Hi {{first_name}}, this is an automated assistant from {{company}} about a free solar assessment. We'll try you again soon. Goodbye."
        let templateFile = folder.appendingPathComponent("template.yaml").path
        try (String(contentsOf: repository.appendingPathComponent("templates/solar-assessment.yaml"), encoding: .utf8) + "\nvoicemail: \"\(voicemail)\"\n")
            .write(toFile: templateFile, atomically: true, encoding: .utf8)
        let campaignFile = folder.appendingPathComponent("campaign.yaml").path
        try """
            name: real-asterisk
            leads: leads.csv
            template: \(templateFile)
            caller_id: '"Bright Solar" <+12125550100>'
            ami: {host: 127.0.0.1, port: \(asterisk.amiPort), username: \(asterisk.username)}
            dial: Local/{digits}@callees
            answered: {context: ai-outbound, exten: s, priority: "1"}
            engine: {mode: embedded, address: "127.0.0.1:\(enginePort)"}
            max_concurrent_calls: \(callees.count)
            calls_per_second: 10
            ring_timeout: 15s
            window: {start: "09:00", end: "21:00"}
            retry:
              max_attempts: 3
              busy: {delay: 10m, max: 2}
            """.write(toFile: campaignFile, atomically: true, encoding: .utf8)

        let store = try CampaignStore(path: folder.appendingPathComponent("cex.sqlite").path)
        var logger = Logger(label: "real-asterisk")
        logger.logLevel = .warning
        let session = try CampaignSession(campaignFile: campaignFile, store: store, logger: logger)
        _ = try session.importLeads()
        var options = CampaignSession.RunOptions()
        options.secret = asterisk.secret
        options.engineDrain = .seconds(5)
        let realStart = Date()
        let start = Self.mondayAfternoonNewYork
        options.runner.now = { start.addingTimeInterval(Date().timeIntervalSince(realStart)) }
        _ = try await session.dial(options: options)

        let database = try DatabaseQueue(path: store.path)
        let outcomes = try await database.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT phone, outcome FROM lead").map { (String($0["phone"] as String), $0["outcome"] as String?) })
        }
        let records = try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT a.phone, c.record FROM call_record c JOIN attempt a ON a.id = c.attempt_id").map { row in
                (String(row["phone"] as String), try CallRecord.decode(Data((row["record"] as String).utf8)))
            }
        }
        let dnc = try store.doNotCallNumbers()
        let channelsLeft = try asterisk.activeChannels()
        let log = asterisk.log
        await asterisk.stop()
        stopped = true

        for callee in callees {
            let transcript = records.filter { $0.0 == "+" + callee.digits }.flatMap { $0.1.turns.map { "\($0.speaker): \($0.text)" } }
            #expect(outcomes["+" + callee.digits] == callee.outcome, "callee \(callee.digits): \(transcript.joined(separator: " | "))\n\(log.suffix(2000))")
        }
        #expect(dnc == ["+12125550104"])
        #expect(channelsLeft == 0)

        // Every answered call's opening was heard in full, by our record and by the PBX's recording.
        let opening = try PitchTemplate.load(path: templateFile)
        let openingSeconds = try await Self.voicedSeconds(of: try opening.render(opening.openingSource, lead: ["first_name": "Lead1"]))
        let messageSeconds = try await Self.voicedSeconds(of: try opening.render(voicemail, lead: ["first_name": "Lead8"]))
        for (phone, record) in records {
            let digits = String(phone.dropFirst())
            if machines.contains(digits) {
                // The message, in full, after the tone, on the machine's recording.
                let message = try #require(record.voicemailMessage, "\(digits): no message left")
                #expect(message.complete == true && message.after == "tone", "\(digits): \(message)")
                let heard = try WAVFile(bytes: [UInt8](Data(contentsOf: folder.appendingPathComponent("heard-\(digits).wav"))))
                let greeting = try WAVFile(bytes: [UInt8](Data(contentsOf: folder.appendingPathComponent("machine.wav"))))
                let greetingEnd = greeting.samples.count + 4_800
                // The engine's clock starts when AudioSocket connects, a few milliseconds after the answer the recording starts at.
                let start = message.startMs * heard.sampleRate / 1000
                #expect(start >= greetingEnd - 800, "\(digits): the message started at \(message.startMs) ms, before the greeting (and tone) ended")
                let voiced = Self.voicedSeconds(Array(heard.samples.dropFirst(max(0, start - 800))), sampleRate: heard.sampleRate, within: messageSeconds.total + 1)
                #expect(voiced >= messageSeconds.voiced * 0.85, "\(digits): the machine recorded \(voiced) s of the \(messageSeconds.voiced) s message")
                continue
            }
            #expect(record.disclosure?.heardInFull == true, "\(digits): \(String(describing: record.disclosure))")
            let heard = try WAVFile(bytes: [UInt8](Data(contentsOf: folder.appendingPathComponent("heard-\(digits).wav"))))
            let agentVoiced = Self.voicedSeconds(heard.samples, sampleRate: heard.sampleRate, within: openingSeconds.total + 1)
            #expect(agentVoiced >= openingSeconds.voiced * 0.85, "\(digits): the callee heard \(agentVoiced) s of the \(openingSeconds.voiced) s opening")
        }
    }

    /// How long the engine's voice takes to say `text`, and how much of that is voiced.
    static func voicedSeconds(of text: String) async throws -> (total: Double, voiced: Double) {
        var samples: [Int16] = []
        for chunk in SpeechChunker.chunks(of: text) {
            for try await piece in EspeakSynthesizer().synthesize(SpokenText.normalize(chunk)) { samples += piece }
        }
        return (Double(samples.count) / 8000, Self.voicedSeconds(samples, sampleRate: 8000, within: .infinity))
    }

    /// Voiced time (20 ms frames above -45 dBFS) from the first voiced frame, for at most `within` seconds.
    static func voicedSeconds(_ samples: [Int16], sampleRate: Int, within: Double) -> Double {
        let frame = sampleRate / 50
        var voiced = 0
        var first: Int?
        var index = 0
        while index + frame <= samples.count {
            let level = VoiceActivityDetector.level(of: Array(samples[index..<index + frame]))
            if level > -45 {
                if first == nil { first = index }
                voiced += 1
            }
            index += frame
            if let first, Double(index - first) / Double(sampleRate) > within { break }
        }
        return Double(voiced) * 0.02
    }
}
