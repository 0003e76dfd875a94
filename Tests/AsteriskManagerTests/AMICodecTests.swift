import NIOCore
import NIOTestUtils
import Testing

@testable import AsteriskManager

@Suite struct AMIDecoderTests {
    static let packets =
        "Response: Success\r\nActionID: L1\r\nMessage: Authentication accepted\r\n\r\n"
        + "\r\n"  // a stray blank line between packets
        + "Event: OriginateResponse\nPrivilege: call,all\nResponse: Failure\nReason:   0\n\n"
        + "Event: VarSet\r\nVariable: A\r\nvariable: B\r\nValue:\r\n\r\n"
    static let decoded: [AMIInbound] = [
        .message(["Response": "Success", "ActionID": "L1", "Message": "Authentication accepted"]),
        .message(AMIMessage([("Event", "OriginateResponse"), ("Privilege", "call,all"), ("Response", "Failure"), ("Reason", "0")])),
        .message(AMIMessage([("Event", "VarSet"), ("Variable", "A"), ("variable", "B"), ("Value", "")])),
    ]

    @Test func decodesPacketsWhateverTheSplit() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(stringInputOutputPairs: [(Self.packets, Self.decoded)]) {
            AMIDecoder(role: .server)
        }
    }

    @Test func clientReadsTheBannerFirstByteAtATime() throws {
        var decoder = AMIDecoder(role: .client)
        var buffer = ByteBuffer()
        var out: [AMIInbound] = []
        for byte in ("Asterisk Call Manager/11.0.0\r\n" + Self.packets).utf8 {
            buffer.writeInteger(byte)
            while let item = try decoder.decode(buffer: &buffer) { out.append(item) }
        }
        #expect(out == [.banner("Asterisk Call Manager/11.0.0")] + Self.decoded)
        #expect(buffer.readableBytes == 0)
    }

    @Test func serverRoleReadsNoBanner() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [("Action: Ping\r\nActionID: p1\r\n\r\n", [.message(["Action": "Ping", "ActionID": "p1"])])]
        ) { AMIDecoder(role: .server) }
    }

    private func decodeAll(_ text: String, role: AMIDecoder.Role = .server) throws -> [AMIInbound] {
        var decoder = AMIDecoder(role: role)
        var buffer = ByteBuffer(string: text)
        var out: [AMIInbound] = []
        while let item = try decoder.decode(buffer: &buffer) { out.append(item) }
        if let last = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { out.append(last) }
        return out
    }

    @Test func rejectsALineOverTheLimitBeforeItEnds() throws {
        let long = "Event: X\r\nData: " + String(repeating: "a", count: 2000)
        #expect(throws: AMIProtocolError.lineTooLong(line: 2)) { try self.decodeAll(long) }
    }

    @Test func acceptsALineAtTheLimit() throws {
        let value = String(repeating: "b", count: AMIDecoder.maximumLineLength - "Data: ".count)
        let out = try self.decodeAll("Data: \(value)\r\n\r\n")
        #expect(out == [.message(["Data": value])])
    }

    @Test func rejectsTooManyHeaders() throws {
        let packet = (0...AMIDecoder.maximumHeaderCount).map { "H\($0): v\r\n" }.joined() + "\r\n"
        #expect(throws: AMIProtocolError.tooManyHeaders) { try self.decodeAll(packet) }
        let fits = (1...AMIDecoder.maximumHeaderCount).map { "H\($0): v\r\n" }.joined() + "\r\n"
        #expect(try self.decodeAll(fits).count == 1)
    }

    @Test func rejectsALineWithoutAColon() throws {
        #expect(throws: AMIProtocolError.malformedLine(line: 2)) { try self.decodeAll("Event: X\r\nno colon here\r\n\r\n") }
    }

    @Test func rejectsAServerThatIsNotAsterisk() throws {
        #expect(throws: AMIProtocolError.unexpectedGreeting) { try self.decodeAll("SSH-2.0-OpenSSH\r\n", role: .client) }
    }

    @Test func aPacketCutShortAtEndOfFileIsAnError() throws {
        #expect(throws: AMIProtocolError.truncatedPacket) { try self.decodeAll("Event: Hangup\r\nCause: 16\r\n") }
        #expect(try self.decodeAll("Event: Hangup\r\n\r\n\r\n").count == 1)
    }

    @Test func errorDescriptionsCarryNoPacketContent() {
        let error = AMIProtocolError.malformedLine(line: 3)
        #expect(error.description == "AMI line without a 'Key: Value' colon (line 3 of the packet)")
    }
}

@Suite struct AMIMessageTests {
    let message = AMIMessage([
        ("Event", "OriginateResponse"), ("Response", "Success"), ("Variable", "A=1"), ("variable", "B=2"), ("Secret", "hunter2"),
    ])

    @Test func classifiesByTheFirstHeader() {
        #expect(self.message.kind == .event("OriginateResponse"))
        #expect(AMIMessage([("Response", "Error")]).kind == .response("Error"))
        #expect(AMIMessage([("Action", "Ping")]).kind == .action("Ping"))
        #expect(AMIMessage([]).kind == .empty)
    }

    @Test func looksUpKeysWithoutRegardToCaseFirstMatchWins() {
        #expect(self.message["RESPONSE"] == "Success")
        #expect(self.message["variable"] == "A=1")
        #expect(self.message.values("VARIABLE") == ["A=1", "B=2"])
        #expect(self.message["Missing"] == nil)
    }

    @Test func descriptionRedactsSecrets() {
        #expect(!self.message.description.contains("hunter2"))
        #expect(self.message.description.contains("Secret: <redacted>"))
    }

    @Test func encoderWritesCRLFAndRefusesLineBreaksInside() throws {
        var buffer = ByteBuffer()
        try AMIEncoder.write(["Action": "Ping", "ActionID": "7"], into: &buffer)
        #expect(String(buffer: buffer) == "Action: Ping\r\nActionID: 7\r\n\r\n")
        #expect(throws: AMIProtocolError.headerInjection) {
            var out = ByteBuffer()
            try AMIEncoder.write(AMIMessage([("CallerID", "x\r\nAction: Logoff")]), into: &out)
        }
    }
}
