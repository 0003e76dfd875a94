/// Appends JSON as `JSONEncoder` writes it with `.sortedKeys` and `.withoutEscapingSlashes`,
/// directly into bytes: a tenth of the encoder's time for a chat request, and the report
/// exports' rows.
public struct JSONWriter {
    public var bytes: [UInt8] = []

    public init() {}

    /// Writes one object's members; `key` calls must come in sorted order.
    public struct Object {
        fileprivate var writer: JSONWriter
        fileprivate var first = true

        public mutating func key(_ name: String, _ value: (inout JSONWriter) -> Void) {
            if !self.first { self.writer.bytes.append(UInt8(ascii: ",")) }
            self.first = false
            self.writer.string(name)
            self.writer.bytes.append(UInt8(ascii: ":"))
            value(&self.writer)
        }
    }

    public mutating func object(_ members: (inout Object) -> Void) {
        self.bytes.append(UInt8(ascii: "{"))
        // The bytes move into the object and back, so appending never copies them.
        var object = Object(writer: self)
        self.bytes = []
        members(&object)
        self = object.writer
        self.bytes.append(UInt8(ascii: "}"))
    }

    public mutating func array<Element>(_ elements: [Element], _ write: (inout JSONWriter, Element) -> Void) {
        self.bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { self.bytes.append(UInt8(ascii: ",")) }
            write(&self, element)
        }
        self.bytes.append(UInt8(ascii: "]"))
    }

    /// Text that is JSON already.
    public mutating func raw(_ text: String) { self.bytes.append(contentsOf: text.utf8) }

    /// As JSONEncoder writes a Double: its shortest form, without a trailing ".0".
    public mutating func number(_ value: Double) {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        self.raw(text)
    }

    public mutating func string(_ text: String) {
        Self.appendString(text, to: &self.bytes)
    }

    /// `text` as a JSON string, quoted and escaped as JSONEncoder does. Runs without escapes are
    /// copied whole: a system prompt or a summary is mostly such runs.
    public static func appendString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var run = 0
            for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<index]))
                Self.appendEscape(byte, to: &bytes)
                run = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ byte: UInt8, to bytes: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
        case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
        case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
        case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
        case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
        case 0x08: bytes.append(contentsOf: #"\b"#.utf8)
        case 0x0C: bytes.append(contentsOf: #"\f"#.utf8)
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: #"\u00"#.utf8)
            bytes.append(contentsOf: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: self.raw("null")
        case .bool(let flag): self.raw(flag ? "true" : "false")
        case .number(let number): self.number(number)
        case .string(let text): self.string(text)
        case .array(let elements): self.array(elements) { $0.value($1) }
        case .object(let members):
            self.object { object in
                for (name, member) in members.sorted(by: { $0.key < $1.key }) { object.key(name) { $0.value(member) } }
            }
        }
    }
}
