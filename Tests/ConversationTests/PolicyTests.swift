import Foundation
import Testing
import TestSupport

@testable import Conversation

@Suite struct PitchTemplateTests {
    static var examplePath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("templates/solar-assessment.yaml").path
    }

    @Test func theExampleTemplateLoadsAndRendersAsText() throws {
        let template = try PitchTemplate.load(path: Self.examplePath)
        #expect(template.variables.isSuperset(of: ["first_name", "city", "company"]))
        let line = try template.render(template.greeting, lead: ["first_name": "Ana & Bo"])
        #expect(line == "Hi Ana & Bo, this is Alex from Bright Solar.")
        #expect(throws: TemplateError.self) { try template.render(template.pitch[0], lead: ["first_name": "Ana"]) }
    }

    @Test func theFixedPartOfTheOpeningIsWhatTheEngineWillSayForAnyLead() throws {
        let template = try PitchTemplate.load(path: Self.examplePath)
        let fixed = template.fixedOpeningSpeech
        #expect(fixed.first == "I'm an automated assistant calling on behalf of Bright Solar.")
        #expect(!fixed.contains { $0.contains("Hi ") })
        // Exactly the chunks a real call's opening is cut into, after the greeting.
        let opening = try template.render(template.openingSource, lead: ["first_name": "Ana"])
        let spoken = SpeechChunker.chunks(of: opening).map(SpokenText.normalize)
        #expect(Array(spoken.dropFirst()) == fixed)
    }

    @Test func refusesADisclosureThatHidesTheAutomation() throws {
        let source = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
            .replacingOccurrences(of: "I'm an automated assistant calling", with: "I'm calling")
        #expect {
            try PitchTemplate.parse(source, file: "templates/x.yaml")
        } throws: { error in
            let description = String(describing: error)
            return description.hasPrefix("templates/x.yaml:11: disclosure: ") && description.contains("automated")
        }
    }

    @Test func namesTheMissingFieldAndTheYAMLLine() throws {
        #expect {
            try PitchTemplate.parse("name: x\ncompany: y\n", file: "t.yaml")
        } throws: { error in
            let description = String(describing: error)
            return description.hasPrefix("t.yaml:1: ") && description.hasSuffix(": is missing")
        }
        #expect {
            try PitchTemplate.parse("name: x\n  bad: [\n", file: "t.yaml")
        } throws: { error in
            String(describing: error).hasPrefix("t.yaml:2: is not valid YAML: ")
        }
    }

    @Test func badMustacheIsNamedInWordsWithWhereItIs() throws {
        let good = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        let broken = good.replacingOccurrences(of: "Hi {{first_name}},", with: "Hi {{#first_name}},")
        do {
            _ = try PitchTemplate.parse(broken, file: "t.yaml")
            Issue.record("accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("greeting: is not valid Mustache: a section is opened and never closed"), "\(text)")
            #expect(!text.contains("ParserError") && !text.contains("MustacheParserContext"), "\(text)")
        }
    }

    @Test func anUnknownKeyOrAWrongTypeIsNamedWithItsLine() throws {
        let good = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        #expect(throws: TemplateError(file: "t.yaml", line: 1, field: "gaol", message: "is not a template setting")) {
            try PitchTemplate.parse("gaol: sell\n" + good, file: "t.yaml")
        }
        let closings = good.replacingOccurrences(of: "closings:\n", with: "closings:\n  intrested: Great.\n")
        #expect(throws: TemplateError.self) { try PitchTemplate.parse(closings, file: "t.yaml") }
        do {
            _ = try PitchTemplate.parse(closings, file: "t.yaml")
        } catch {
            #expect("\(error)".contains("closings.intrested: is not a template setting"), "\(error)")
        }
        let wrongType = good.replacingOccurrences(of: "\ngoal: book a free home energy assessment\n", with: "\ngoal: [book, sell]\n")
        #expect(throws: TemplateError(file: "t.yaml", line: 7, field: "goal", message: "should be a single value, not a list or a mapping")) {
            try PitchTemplate.parse(wrongType, file: "t.yaml")
        }
    }
}

@Suite struct ScriptedPolicyTests {
    static func dialogue() throws -> any DialogueSession {
        let template = try PitchTemplate.load(path: PitchTemplateTests.examplePath)
        let context = CallContext(
            callID: UUID(uuidString: "00000000-0000-0000-0000-000000000001")!, lead: ["first_name": "Ana", "city": "Springfield"],
            timeZone: TimeZone(identifier: "America/Chicago")!, startedAt: ISO8601DateFormatter().date(from: "2026-11-25T19:00:00Z")!
        )
        return try ScriptedPolicy(template: template).start(context)
    }

    static func run(_ lines: [String]) async throws -> [String] {
        let dialogue = try dialogue()
        var transcript = ["agent: \(dialogue.opening)"]
        var history: [DialogueTurn] = []
        for line in lines {
            transcript.append("caller: \(line)")
            history.append(DialogueTurn(speaker: .caller, text: line))
            for try await output in dialogue.reply(to: line, history: history) {
                switch output {
                case .text(let text): transcript.append("agent: \(text)")
                case .action(let action): transcript.append("action: \(action)")
                case .failover(let failover): transcript.append("failover: \(failover.reason)")
                case .timeToFirstToken: transcript.append("a model answered")
                }
            }
        }
        return transcript
    }

    @Test func followsTheScriptForEachKindOfCaller() async throws {
        let conversations: [(String, [String])] = [
            ("interested", ["yes sure", "okay", "yes please"]),
            ("objection then opt-out", ["who is this", "it's too expensive", "please remove me from your list"]),
            ("callback", ["i'm busy right now call me tomorrow at three"]),
            ("objection twice", ["not interested", "i said i'm not interested"]),
            ("faq", ["yeah", "how much does it cost", "no thanks"]),
            ("unclear", ["", ""]),
            ("wrong person", ["you have the wrong number"]),
        ]
        var lines: [String] = []
        for (name, callerLines) in conversations {
            lines.append("# \(name)")
            lines += try await Self.run(callerLines)
        }
        let mismatch = goldenMismatch(lines.joined(separator: "\n") + "\n", name: "policy.txt")
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test func optsOutOnItsKeyAndPromptsOnSilence() throws {
        let dialogue = try Self.dialogue()
        #expect(dialogue.dtmf("5") == nil)
        #expect(dialogue.dtmf("9")?.contains(.action(.addToDoNotCall)) == true)
        #expect(dialogue.silence(count: 1) == [.text("Are you still there?")])
        #expect(dialogue.silence(count: 2).first == .action(.endCall(.noConversation)))
    }

    /// The decision comes before the closing line, so a caller who talks over the line or hangs
    /// up during it cannot lose it; and an opt-out is honoured after the closing too.
    @Test func aClosingDecidesBeforeItSpeaksAndAnOptOutStillCountsAfterIt() throws {
        let dialogue = try #require(try Self.dialogue() as? ScriptedDialogue)
        let closing = dialogue.decide("call me back tomorrow")
        #expect(closing.firstIndex(of: .action(.endCall(.callback)))! < closing.firstIndex { if case .text = $0 { true } else { false } }!)
        #expect(dialogue.decide("yes") == [])
        #expect(dialogue.decide("stop calling me").contains(.action(.addToDoNotCall)))
    }

    /// Heard on a real PBX: "Yes please, book it." came out of pocketsphinx as "yes later but
    /// good". A lone time word in a turn that says yes is not a callback request.
    @Test func aLoneTimeWordBesideAYesIsNoCallback() throws {
        let dialogue = try #require(try Self.dialogue() as? ScriptedDialogue)
        #expect(!dialogue.decide("yes later but good").contains(.action(.endCall(.callback))))
        #expect(try #require(try Self.dialogue() as? ScriptedDialogue).decide("maybe later").contains(.action(.endCall(.callback))))
    }
}

extension ScriptedPolicyTests {
    /// Heard on a real PBX: "I am driving right now" came out of pocketsphinx as "you right opt
    /// out", and the number went on the list. Opt-out words among others are asked about.
    @Test func anOptOutTheRecogniserMayHaveMadeOfNoiseIsAskedAboutAndTheAnswerActedOn() throws {
        let yes = try #require(try Self.dialogue() as? ScriptedDialogue)
        #expect(yes.decide("you right opt out") == [.text("Would you like me to take your number off our list?")])
        #expect(yes.decide("yes please").contains(.action(.addToDoNotCall)))

        let no = try #require(try Self.dialogue() as? ScriptedDialogue)
        _ = no.decide("you right opt out")
        let kept = no.decide("no")
        #expect(!kept.contains(.action(.addToDoNotCall)) && !kept.contains { if case .action(.endCall) = $0 { true } else { false } }, "\(kept)")
        #expect(kept.first.map { if case .text(let text) = $0 { text.hasPrefix("No problem.") } else { false } } == true, "\(kept)")

        let unclear = try #require(try Self.dialogue() as? ScriptedDialogue)
        _ = unclear.decide("you right opt out")
        let ended = unclear.decide("hmm what")
        #expect(ended.contains(.action(.endCall(.notInterested))) && !ended.contains(.action(.addToDoNotCall)), "\(ended)")
    }

    @Test(arguments: ["please remove me from your list", "stop", "Stop calling me.", "opt out please", "take me off your list", "do not call me again"])
    func aClearOptOutIsActedOnAtOnce(_ line: String) throws {
        let dialogue = try #require(try Self.dialogue() as? ScriptedDialogue)
        #expect(dialogue.decide(line).contains(.action(.addToDoNotCall)), "\(line)")
    }

    @Test func aCallerWhoHangsUpOnAnUnsureOptOutIsNotListedUnaskedNorCalledAgain() {
        let context = CallContext(callID: UUID(), lead: [:], timeZone: .gmt, startedAt: Date())
        #expect(CallSession.decisions(afterHangingUpOn: "you right opt out", context: context) == [.endCall(.notInterested)])
        #expect(CallSession.decisions(afterHangingUpOn: "stop calling me", context: context) == [.addToDoNotCall, .endCall(.doNotCall)])
    }
}

@Suite struct PhraseMatcherTests {
    @Test func toleratesAWordBetweenAndTheRecognisersInflections() {
        let matches = { (heard: String, phrase: String) in PhraseMatcher.matches(PhraseMatcher.words(heard), phrase) }
        #expect(matches("please remove all of me", "remove me") == false)
        #expect(matches("please remove uh me from your list", "remove me"))
        #expect(matches("do not called this number", "do not call"))
        #expect(matches("stop calls", "stop calling") == false)
        #expect(matches("he calls", "call"))
        // Short words must match whole: "no" is not "now" or "nope".
        #expect(matches("right now", "no") == false)
        #expect(matches("opt calling me", "stop") == false)
    }

    @Test func aPhraseSetMatchesWhatItsPhrasesMatchAndIsWrittenAsTheirList() throws {
        let set: PhraseSet = ["Remove me", "don’t call", "opt out"]
        for heard in ["please remove uh me", "Don't CALL again", "i want to opt out now", "remove all of me", "call me", ""] {
            let words = PhraseMatcher.words(heard)
            #expect(set.matches(words) == set.phrases.contains { PhraseMatcher.matches(words, $0) }, "\(heard)")
        }
        #expect(set.matches(PhraseMatcher.words("don't call")))
        let json = try JSONEncoder().encode(set)
        #expect(String(decoding: json, as: UTF8.self) == #"["Remove me","don’t call","opt out"]"#)
        #expect(try JSONDecoder().decode(PhraseSet.self, from: json) == set)
    }
}

@Suite struct PolicyActionCodingTests {
    @Test func actionsRoundTripAsNamedObjects() throws {
        let actions: [PolicyAction] = [
            .endCall(.doNotCall), .addToDoNotCall, .transferToHuman(reason: "asked"),
            .scheduleCallback(CallbackRequest(phrase: "tomorrow", time: Date(timeIntervalSince1970: 86_400), timeZone: "America/Chicago")),
        ]
        let data = try JSONEncoder().encode(actions)
        #expect(try JSONDecoder().decode([PolicyAction].self, from: data) == actions)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#"{"action":"end_call","outcome":"do_not_call"}"#) || text.contains(#"{"outcome":"do_not_call","action":"end_call"}"#))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PolicyAction.self, from: Data(#"{"action":"dance"}"#.utf8)) }
    }
}
