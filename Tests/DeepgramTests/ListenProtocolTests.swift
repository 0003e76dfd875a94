import Deepgram
import Foundation
import Speech
import Testing

/// The listen socket's messages and how they become recogniser events.
@Suite struct ListenProtocolTests {
    @Test func deepgramsMessagesReadAsTheDocsShowThem() throws {
        let results = """
            {"type":"Results","channel_index":[0,1],"duration":1.6,"start":0.0,"is_final":true,"speech_final":true,"from_finalize":false,
             "channel":{"alternatives":[{"transcript":"Hi, I'd like to book.","confidence":0.97,
               "words":[{"word":"hi","start":0.08,"end":0.3,"confidence":0.99,"punctuated_word":"Hi,"}]}]},
             "metadata":{"request_id":"a","model_info":{"name":"general-nova-3","version":"2024-12-20.0","arch":"nova-3"},"model_uuid":"b"}}
            """
        #expect(try ListenMessage(json: results) == .results(
            ListenResults(transcript: "Hi, I'd like to book.", confidence: 0.97, start: 0, duration: 1.6, isFinal: true, speechFinal: true)))
        #expect(try ListenMessage(json: #"{"type":"SpeechStarted","channel":[0,1],"timestamp":0.42}"#) == .speechStarted(timestamp: 0.42))
        #expect(try ListenMessage(json: #"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":1.52}"#) == .utteranceEnd(lastWordEnd: 1.52))
        #expect(try ListenMessage(json: #"{"type":"Metadata","request_id":"r","created":"2025-01-01T00:00:00Z","duration":9.8,"channels":1}"#)
            == .metadata(requestID: "r", duration: 9.8))
        #expect(try ListenMessage(json: #"{"type":"Warning","description":"x"}"#) == .other("Warning"))
        for message in [results] { #expect(try ListenMessage(json: ListenMessage(json: message).json) == ListenMessage(json: message)) }
        #expect(ListenControl(json: #"{"type":"KeepAlive"}"#) == .keepAlive && ListenControl(json: ListenControl.closeStream.json) == .closeStream)
    }

    @Test func messagesWithFieldsLeftOutNullOrOfAnotherShapeAreRead() throws {
        let listen: [(String, ListenMessage)] = [
            (
                #"{"type":"Results","duration":0.5,"start":1,"is_final":false,"speech_final":false,"channel":{"alternatives":[{"transcript":"yes \"please\" 😀"}]}}"#,
                .results(ListenResults(transcript: "yes \"please\" 😀", confidence: 0, start: 1, duration: 0.5, isFinal: false, speechFinal: false))
            ),
            (
                #"{"type":"Results","is_final":true,"channel":{"alternatives":[]}}"#,
                .results(ListenResults(transcript: "", confidence: 0, start: 0, duration: 0, isFinal: true, speechFinal: false))
            ),
            (
                #"{"type":"Results","channel":[0,1],"start":null}"#,
                .results(ListenResults(transcript: "", confidence: 0, start: 0, duration: 0, isFinal: false, speechFinal: false))
            ),
            (#"{"type":"SpeechStarted","channel":[0,1],"timestamp":3}"#, .speechStarted(timestamp: 3)),
            (#"{"type":"Metadata","request_id":null}"#, .metadata(requestID: "", duration: 0)),
            (#"{"type":"Error","code":1}"#, .other("Error")),
        ]
        for (json, message) in listen {
            #expect(try ListenMessage(json: json) == message, "\(json)")
        }
        for reply in [SpeakReply.metadata(requestID: "r"), .flushed(sequence: 3), .cleared(sequence: 4), .warning(code: "W1", message: "slow"), .other("Open")] {
            #expect(try SpeakReply(json: reply.json) == reply)
        }
        #expect(throws: DeepgramError.malformed("is_final is not true or false")) { try ListenMessage(json: #"{"type":"Results","is_final":"yes"}"#) }
        #expect(throws: DeepgramError.malformed("type is missing")) { try ListenMessage(json: #"{"channel":{}}"#) }
        #expect(throws: DeepgramError.malformed("not JSON")) { try ListenMessage(json: #"{"type":"Results""#) }
        #expect(throws: DeepgramError.malformed("sequence_id is not an integer")) { try SpeakReply(json: #"{"type":"Flushed","sequence_id":1.5}"#) }
    }

    @Test func theQueryNamesTheRateWithTheEncodingAndTheGapOnlyWithInterimResults() {
        func query(_ options: ListenOptions) -> [String: String] {
            Dictionary(options.queryItems.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $0 + "|" + $1 })
        }
        let plain = query(ListenOptions(keyterms: ["solar", "remove me"]))
        #expect(plain["encoding"] == "linear16" && plain["sample_rate"] == "8000" && plain["channels"] == "1")
        #expect(plain["interim_results"] == "true" && plain["utterance_end_ms"] == "1000" && plain["vad_events"] == "true" && plain["endpointing"] == "300")
        #expect(plain["keyterm"] == "solar|remove me")
        let quiet = query(ListenOptions(interimResults: false, endpointingMs: nil))
        #expect(quiet["utterance_end_ms"] == nil && quiet["endpointing"] == "false")
    }

    @Test func aTurnEndsOnceWhicheverEndComesFirst() {
        var turns = ListenTurns()
        func results(_ text: String, final: Bool, speechFinal: Bool = false, fromFinalize: Bool = false) -> ListenMessage {
            .results(ListenResults(transcript: text, start: 0, duration: 1, isFinal: final, speechFinal: speechFinal, fromFinalize: fromFinalize))
        }
        var events: [RecognitionEvent] = []
        for message in [
            ListenMessage.speechStarted(timestamp: 0.1), results("it's too", final: false), results("it's too expensive", final: true),
            results("for us", final: true, speechFinal: true), .utteranceEnd(lastWordEnd: 2),
            // A pause the endpointer missed: UtteranceEnd ends it.
            results("call me", final: true), .utteranceEnd(lastWordEnd: 4),
            // Silence and empty results end nothing.
            results("", final: true, speechFinal: true), .utteranceEnd(lastWordEnd: 5),
        ] {
            events += turns.events(for: message)
        }
        #expect(events == [
            .speechStarted, .interim("it's too"), .final("it's too expensive"), .final("for us"), .utteranceEnd, .final("call me"), .utteranceEnd,
        ])
        // Finalize with nothing heard ends at once; with words heard, at the answer to it.
        #expect(turns.finalizeRequested() == [.utteranceEnd])
        #expect(turns.events(for: results("", final: true, fromFinalize: true)).isEmpty)
        #expect(turns.events(for: results("yes", final: false)) == [.interim("yes")])
        #expect(turns.finalizeRequested().isEmpty)
        #expect(turns.events(for: results("yes please", final: true, fromFinalize: true)) == [.final("yes please"), .utteranceEnd])
    }
}

@Suite struct CredentialPrintingTests {
    @Test func aCredentialPrintsNoSecretHoweverItIsPrinted() {
        let endpoint = DeepgramEndpoint(credential: .apiKey("dg-secret-123456"))
        var dumped = ""
        dump(endpoint, to: &dumped)
        for text in ["\(endpoint)", String(reflecting: endpoint), dumped, "\(DeepgramCredential.accessToken("jwt-secret"))"] {
            #expect(!text.contains("secret"), "\(text)")
        }
    }
}
