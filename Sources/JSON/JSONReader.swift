/// Reads JSON into a `JSONValue` in one pass over its bytes (RFC 8259: objects, arrays, strings
/// with every escape, numbers, literals; nothing after the value but spaces).
///
/// The chat client reads each streamed chunk with it, the Deepgram clients each text message,
/// and the doubles each request body; `JSONObject` then takes the members by name and type.
/// Foundation's `JSONDecoder` took about 15 µs for a chunk of a few hundred bytes, most of the
/// time from a model's bytes to its text; `JSONValue`'s `Decodable` conformance guesses each
/// value's kind by trying them in turn, and every wrong guess throws.
public struct JSONReader {
    private let bytes: [UInt8]
    private var index = 0

    /// The value, or nil when the bytes are not one JSON value.
    public static func read(_ bytes: some Sequence<UInt8>) -> JSONValue? {
        var reader = JSONReader(bytes: Array(bytes))
        // Checked as UTF-8 once, so each string's bytes are then taken as they are.
        guard reader.bytes.allSatisfy({ $0 < 0x80 }) || String(validating: reader.bytes, as: UTF8.self) != nil else { return nil }
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipSpaces()
        return reader.index == reader.bytes.count ? value : nil
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func value(depth: Int) -> JSONValue? {
        guard depth < 256 else { return nil }
        self.skipSpaces()
        guard let byte = self.peek else { return nil }
        switch byte {
        case UInt8(ascii: "{"):
            self.index += 1
            var object: [String: JSONValue] = [:]
            if self.take(UInt8(ascii: "}")) { return .object(object) }
            repeat {
                self.skipSpaces()
                guard self.take(UInt8(ascii: "\"")), let key = self.string() else { return nil }
                guard self.take(UInt8(ascii: ":")), let value = self.value(depth: depth + 1) else { return nil }
                object[key] = value
            } while self.take(UInt8(ascii: ","))
            return self.take(UInt8(ascii: "}")) ? .object(object) : nil
        case UInt8(ascii: "["):
            self.index += 1
            var array: [JSONValue] = []
            if self.take(UInt8(ascii: "]")) { return .array(array) }
            repeat {
                guard let value = self.value(depth: depth + 1) else { return nil }
                array.append(value)
            } while self.take(UInt8(ascii: ","))
            return self.take(UInt8(ascii: "]")) ? .array(array) : nil
        case UInt8(ascii: "\""):
            self.index += 1
            return self.string().map(JSONValue.string)
        case UInt8(ascii: "t"): return self.literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return self.literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return self.literal("null") ? .null : nil
        default: return self.number()
        }
    }

    private var peek: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private mutating func skipSpaces() {
        while let byte = self.peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { self.index += 1 }
    }

    /// Skips spaces, then consumes `byte` if it comes next.
    private mutating func take(_ byte: UInt8) -> Bool {
        self.skipSpaces()
        guard self.peek == byte else { return false }
        self.index += 1
        return true
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { return false }
        for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] { return false }
        self.index += count
        return true
    }

    /// The rest of a string whose opening quote is read.
    private mutating func string() -> String? {
        // Runs between escapes are copied whole (the bytes were checked as UTF-8, and a run
        // ends only at ASCII): appending scalar by scalar was most of the chat double's time on
        // a long prompt.
        var text = ""
        var run = self.index
        func flushRun(upTo end: Int, into text: inout String) {
            guard run < end else { return }
            text += String(decoding: self.bytes[run..<end], as: UTF8.self)
        }
        while let byte = self.peek {
            switch byte {
            case UInt8(ascii: "\""):
                flushRun(upTo: self.index, into: &text)
                self.index += 1
                return text
            case UInt8(ascii: "\\"):
                flushRun(upTo: self.index, into: &text)
                guard let scalar = self.escape() else { return nil }
                text.unicodeScalars.append(scalar)
                run = self.index
            case 0..<0x20:
                return nil
            default:
                self.index += 1
            }
        }
        return nil
    }

    /// One escape after its backslash; a UTF-16 surrogate pair is one scalar.
    private mutating func escape() -> Unicode.Scalar? {
        self.index += 1
        guard let byte = self.peek else { return nil }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return Unicode.Scalar(byte)
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            guard let high = self.hex4() else { return nil }
            guard (0xD800..<0xDC00).contains(high) else { return Unicode.Scalar(high) }
            guard self.literal("\\u"), let low = self.hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        default: return nil
        }
    }

    private mutating func hex4() -> UInt32? {
        guard self.index + 4 <= self.bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Character(Unicode.Scalar(self.bytes[self.index])).hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() -> JSONValue? {
        let start = self.index
        func isDigit(_ byte: UInt8?) -> Bool { byte.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
        func digits() -> Bool {
            guard isDigit(self.peek) else { return false }
            while isDigit(self.peek) { self.index += 1 }
            return true
        }
        if self.peek == UInt8(ascii: "-") { self.index += 1 }
        if self.peek == UInt8(ascii: "0") {
            self.index += 1
        } else if !digits() {
            return nil
        }
        if self.peek == UInt8(ascii: ".") {
            self.index += 1
            guard digits() else { return nil }
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.index += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.index += 1 }
            guard digits() else { return nil }
        }
        return Double(String(decoding: self.bytes[start..<self.index], as: UTF8.self)).map(JSONValue.number)
    }
}
