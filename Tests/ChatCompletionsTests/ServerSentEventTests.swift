import ChatCompletions
import Testing

/// The SSE reader, fed whole and byte by byte.
@Suite struct ServerSentEventTests {
    func parse(_ text: String, pieceSize: Int) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        let bytes = Array(text.utf8)
        var events: [ServerSentEvent] = []
        var offset = 0
        while offset < bytes.count {
            events += parser.feed(bytes[offset..<min(offset + pieceSize, bytes.count)])
            offset += pieceSize
        }
        return events
    }

    static let stream = """
        : keepalive

        data: {"a":1}

        data:{"b":"é名"}\r\n\r\nevent: error\rdata: line one\rdata: line two\r\r\
        id: 7
        data:  two spaces keep one
        retry: 3000

        data

        :comment only

        data: [DONE]

        data: left open at the end
        """

    static let expected = [
        ServerSentEvent(data: #"{"a":1}"#),
        ServerSentEvent(data: #"{"b":"é名"}"#),
        ServerSentEvent(event: "error", data: "line one\nline two"),
        ServerSentEvent(data: " two spaces keep one", id: "7"),
        ServerSentEvent(data: "", id: "7"),
        ServerSentEvent(data: "[DONE]", id: "7"),
    ]

    @Test(arguments: [1, 2, 3, 5, 1000])
    func everyLineEndCommentAndFieldReadsTheSameInPiecesOfAnySize(pieceSize: Int) {
        #expect(self.parse(Self.stream, pieceSize: pieceSize) == Self.expected)
    }

    @Test func aCRLFSplitBetweenPiecesEndsOneLineNotTwo() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array("data: x\r".utf8)).isEmpty)
        #expect(parser.feed(Array("\n\r".utf8)) == [ServerSentEvent(data: "x")])
        #expect(parser.feed(Array("\ndata: y\n\n".utf8)) == [ServerSentEvent(data: "y")])
    }

    @Test func encodedEventsReadBackAsThemselves() {
        let events = [
            ServerSentEvent(data: "one"), ServerSentEvent(event: "error", data: "two\nlines"), ServerSentEvent(data: ""),
            ServerSentEvent(data: #"{"k":"v: w"}"#, id: "9"),
        ]
        #expect(self.parse(events.map(\.encoded).joined(), pieceSize: 1) == events)
    }
}
