import Foundation
import JSON
import Testing

/// The writer's bytes are JSONEncoder's, with sorted keys and slashes as they are.
@Suite struct JSONWriterTests {
    func encoded(_ value: JSONValue) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    func written(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test(arguments: [
        "", "plain", "Say \"hi\" \\ then a/b", "line\nbreak\r\ttab", "\u{01}\u{08}\u{0C}\u{1F}\u{7F}", "Zürich 😀 \u{2028}", "\"", "ends with \\",
    ])
    func stringsAreEscapedAsJSONEncoderEscapesThem(_ text: String) throws {
        #expect(self.written(.string(text)) == (try self.encoded(.string(text))))
        var bytes: [UInt8] = []
        JSONWriter.appendString(text, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == (try self.encoded(.string(text))))
    }

    @Test func valuesAreWrittenAsJSONEncoderWritesThem() throws {
        let value: JSONValue = [
            "b": [.number(1), .number(-2.5), .number(0.30000000000000004), .number(1e21), true, .null],
            "a": ["z": "last", "m": [:], "c": []],
        ]
        #expect(self.written(value) == (try self.encoded(value)))
    }
}
