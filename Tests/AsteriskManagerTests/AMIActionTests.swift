import NIOCore
import Testing

@testable import AsteriskManager

@Suite struct AMIActionTests {
    static let uuid = "6f1c2b1e-7d0a-4b7e-9a51-0c3e1d2f4a55"

    @Test func originateCarriesEveryFieldInOrder() throws {
        let action = try AMIAction.originate(
            Originate(
                channel: "PJSIP/+15551234567@trunk",
                target: .dialplan(context: "ai-outbound", exten: "s", priority: "1"),
                timeoutMilliseconds: 30000,
                callerID: "\"Acme\" <15550001111>",
                variables: [("CALL_UUID", Self.uuid), ("CEX_CALL_ID", Self.uuid)],
                account: "campaign-7",
                codecs: ["ulaw", "alaw"],
                channelID: Self.uuid,
                actionID: Self.uuid
            )
        )
        var buffer = ByteBuffer()
        try AMIEncoder.write(action.message(actionID: action.actionID!), into: &buffer)
        #expect(
            String(buffer: buffer) == """
                Action: Originate\r
                ActionID: \(Self.uuid)\r
                Channel: PJSIP/+15551234567@trunk\r
                Context: ai-outbound\r
                Exten: s\r
                Priority: 1\r
                Timeout: 30000\r
                CallerID: "Acme" <15550001111>\r
                Variable: CALL_UUID=\(Self.uuid)\r
                Variable: CEX_CALL_ID=\(Self.uuid)\r
                Account: campaign-7\r
                Codecs: ulaw,alaw\r
                ChannelId: \(Self.uuid)\r
                Async: true\r
                \r

                """
        )
    }

    @Test func originateToAnApplication() throws {
        let action = try AMIAction.originate(
            Originate(channel: "Local/100@callees", target: .application(name: "AudioSocket", data: "\(Self.uuid);127.0.0.1:9092"))
        )
        #expect(action.fields["Application"] == "AudioSocket")
        #expect(action.fields["Context"] == nil)
        #expect(action.fields["Async"] == "true")
    }

    @Test(arguments: [
        (Originate(channel: "", target: .application(name: "Wait", data: "1")), AMIActionError(field: "Channel", problem: .missing)),
        (Originate(channel: "PJSIPtrunk", target: .application(name: "Wait", data: "1")), AMIActionError(field: "Channel", problem: .invalidChannel)),
        (
            Originate(channel: "PJSIP/1@t", target: .dialplan(context: "c", exten: "", priority: "1")),
            AMIActionError(field: "Exten", problem: .missing)
        ),
        (
            Originate(channel: "PJSIP/1@t", target: .application(name: "Wait", data: "1"), timeoutMilliseconds: 0),
            AMIActionError(field: "Timeout", problem: .notPositive)
        ),
        (
            Originate(channel: "PJSIP/1@t", target: .application(name: "Wait", data: "1"), variables: [("NAME", "Smith, John")]),
            AMIActionError(field: "Variable NAME", problem: .commaInVariable)
        ),
        (
            Originate(channel: "PJSIP/1@t", target: .application(name: "Wait", data: "1"), variables: [("A=B", "x")]),
            AMIActionError(field: "Variable", problem: .invalidVariableName)
        ),
        (
            Originate(channel: "PJSIP/1@t", target: .application(name: "Wait", data: "1"), channelID: String(repeating: "x", count: 150)),
            AMIActionError(field: "ChannelId", problem: .tooLong(149))
        ),
        (
            Originate(channel: "PJSIP/1@t", target: .application(name: "Wait", data: "1"), callerID: "x\nAction: Logoff"),
            AMIActionError(field: "CallerID", problem: .lineBreak)
        ),
    ])
    func invalidOriginatesAreRefusedWithTheField(originate: Originate, error: AMIActionError) {
        #expect(throws: error) { try AMIAction.originate(originate) }
    }

    @Test func commaErrorNamesTheVariableButNotTheValue() throws {
        let error = AMIActionError(field: "Variable NAME", problem: .commaInVariable)
        #expect(error.description.contains("NAME"))
        #expect(!error.description.contains("Smith"))
    }

    @Test func md5KeyIsTheLowercaseHexOfChallengeAndSecret() throws {
        // python3 -c "import hashlib;print(hashlib.md5(b'1234567890s3cret').hexdigest())"
        #expect(AMIAction.md5Key(challenge: "1234567890", secret: "s3cret") == "f636d28296db47233db6b0bdeb2442a7")
        let login = try AMIAction.login(username: "ai", challenge: "1234567890", secret: "s3cret")
        #expect(login.fields["AuthType"] == "MD5")
        #expect(login.fields["Secret"] == nil)
    }

    @Test func loginCarriesTheEventMask() throws {
        let login = try AMIAction.login(username: "ai", secret: "s3cret", events: .classes(["call", "dialplan"]))
        #expect(login.fields["Events"] == "call,dialplan")
        #expect(AMIAction.events(.off).fields["EventMask"] == "off")
    }
}

@Suite struct AMIEventTests {
    @Test func typesOriginateResponse() {
        let event = AMIEvent(AMIMessage([
            ("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", "u1"), ("Response", "Failure"),
            ("Channel", "PJSIP/+15551234567@trunk"), ("Reason", "0"), ("Uniqueid", "u1"), ("CallerIDNum", "<unknown>"),
        ]))
        guard case .originateResponse(let response)? = event else {
            Issue.record("not typed as OriginateResponse")
            return
        }
        #expect(!response.succeeded)
        #expect(response.reason == .failure)
        #expect(response.uniqueID == "u1")
        #expect(event?.uniqueID == "u1")
    }

    @Test func typesHangupWithTechCause() {
        let event = AMIEvent(AMIMessage([
            ("Event", "Hangup"), ("Channel", "PJSIP/trunk-00000007"), ("ChannelState", "5"), ("Uniqueid", "u2"),
            ("Cause", "17"), ("Cause-txt", "User busy"), ("TechCause", "486"),
        ]))
        guard case .hangup(let hangup)? = event else {
            Issue.record("not typed as Hangup")
            return
        }
        #expect(hangup.cause == 17)
        #expect(hangup.techCause == 486)
        #expect(hangup.channel.state == .ringing)
    }

    @Test func dialEventsNameTheDestination() {
        let event = AMIEvent(AMIMessage([("Event", "DialEnd"), ("DestChannel", "PJSIP/trunk-1"), ("DestUniqueid", "u3"), ("DialStatus", "BUSY")]))
        guard case .dialEnd(let dial)? = event else {
            Issue.record("not typed as DialEnd")
            return
        }
        #expect(dial.dialStatus == "BUSY")
        #expect(dial.caller == nil)
        #expect(event?.uniqueID == "u3")
    }

    @Test func readsCallerAndDestinationFieldsApartAndNamesWithoutCase() {
        let event = AMIEvent(AMIMessage([
            ("event", "DIALSTATE"), ("Channel", "Local/100@out-1;2"), ("Uniqueid", "c1"), ("ChannelState", "6"),
            ("DestChannel", "PJSIP/trunk-2"), ("DestUniqueid", "d1"), ("DestChannelState", "5"), ("DialStatus", "RINGING"),
        ]))
        guard case .dialState(let dial)? = event else {
            Issue.record("not typed as DialState")
            return
        }
        #expect(dial.caller?.uniqueID == "c1")
        #expect(dial.caller?.state == .up)
        #expect(dial.destination.channel == "PJSIP/trunk-2")
        #expect(dial.destination.state == .ringing)
        #expect(event?.uniqueID == "d1")
    }

    @Test func keepsUnknownEventsAsPackets() {
        let message = AMIMessage([("Event", "PeerStatus"), ("Peer", "PJSIP/trunk")])
        #expect(AMIEvent(message) == .other(name: "PeerStatus", message))
        #expect(AMIEvent(AMIMessage([("Response", "Success")])) == nil)
    }
}

@Suite struct ReconnectBackoffTests {
    @Test func growsExponentiallyUpToTheCapWithJitter() {
        let backoff = ReconnectBackoff(initial: .milliseconds(500), maximum: .seconds(30))
        #expect(backoff.delay(attempt: 0, unitRandom: 1) == .milliseconds(500))
        #expect(backoff.delay(attempt: 0, unitRandom: 0) == .milliseconds(250))
        #expect(backoff.delay(attempt: 3, unitRandom: 1) == .seconds(4))
        #expect(backoff.delay(attempt: 20, unitRandom: 1) == .seconds(30))
        #expect(backoff.delay(attempt: 200, unitRandom: 0) == .seconds(15))
    }
}
