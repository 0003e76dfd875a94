import Foundation
import JSON
import Testing

/// The one-pass JSON reader reads what JSONDecoder reads, and refuses what it refuses.
@Suite struct JSONReaderTests {
    func decoded(_ text: String) -> JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    @Test func readsWhatJSONEncoderWroteAsJSONDecoderDoes() throws {
        let body: JSONValue = [
            "model": "gpt-4o",
            "messages": [
                ["role": "system", "content": "Goal: book a visit.\nSay \"hi\" \\ then <lead>{\"city\": \"Zürich\"}</lead> 😀\t\u{01}"],
                ["role": "assistant", "content": .null, "tool_calls": [["id": "call_1", "function": ["name": "end_call", "arguments": #"{"outcome":"interested"}"#]]]],
            ],
            "temperature": .number(0.4), "max_tokens": .number(160), "stream": true,
            "tools": [["type": "function", "function": ["name": "schedule_callback", "parameters": ["type": "object", "required": ["when"]]]]],
        ]
        let bytes = try JSONEncoder().encode(body)
        let read = try #require(JSONReader.read(bytes))
        #expect(read == body)
        #expect(read == (try JSONDecoder().decode(JSONValue.self, from: bytes)))
    }

    @Test(arguments: [
        #"{"a": [1, -2.5e3, 0.125, true, false, null, "x"], "b": {"c": {}} , "d": []}"#,
        #"  "\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"  "#,
        "[[[]], {\"k\": \"v\"}]",
        "-0",
        "\"naïve café\"",
        "[0, -0.5e-3, 1E+2, 10.25, 123456789012]",
    ])
    func readsWhatJSONDecoderReads(_ text: String) throws {
        let expected = try #require(self.decoded(text))
        #expect(JSONReader.read(Array(text.utf8)) == expected)
    }

    @Test(arguments: [
        "", "{", "[1,]", #"{"a" 1}"#, #"{"a":1,}"#, "tru", "+1", "1 2", #""open"#, "\"tab\there\"", #""\ud800""#, #""\x""#,
        "[1] x", #"{"a":"b"}}"#, "01", "1.", ".5", "1e", "1e+", "-", "--1", "[1.e3]", "0x1F", "[-]",
    ])
    func refusesWhatIsNotOneJSONValue(_ text: String) {
        #expect(JSONReader.read(Array(text.utf8)) == nil, "\(text)")
    }

    @Test func refusesBytesThatAreNotUTF8() {
        // A lone continuation byte, a cut two-byte sequence, a cut four-byte one: in a string and outside.
        for bytes: [UInt8] in [[0x22, 0x80, 0x22], [0x22, 0xC3, 0x28, 0x22], [0x22, 0xF0, 0x9F, 0x98, 0x22], [0x5B, 0x31, 0x5D, 0xFF]] {
            #expect(JSONReader.read(bytes) == nil, "\(bytes)")
        }
        #expect(JSONReader.read(Array("\"caf\u{E9} \u{1F600}\"".utf8)) == .string("caf\u{E9} \u{1F600}"))
    }
}
