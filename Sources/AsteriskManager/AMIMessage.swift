/// One AMI packet: ordered `Key: Value` headers, ended on the wire by a blank line.
///
/// Keys are matched without regard to case and the first match wins, as Asterisk does
/// (`astman_get_header`); repeated keys (`Variable`, `ChanVariable`) keep their order.
/// The headers are stored as one byte array with spans, so a decoded packet costs two
/// allocations however many headers it has; strings are made only when asked for.
public struct AMIMessage: Sendable {
    struct Span: Sendable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    var bytes: [UInt8]
    var spans: [Span]

    /// Builds a packet from header pairs, in order.
    ///
    /// Names and values are taken as they are; `AMIAction` validates what goes onto the wire
    /// and the encoder refuses CR or LF inside a header.
    public init(_ headers: [(String, String)]) {
        self.bytes = []
        self.spans = []
        self.bytes.reserveCapacity(headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count })
        self.spans.reserveCapacity(headers.count)
        for (name, value) in headers {
            self.append(name, value)
        }
    }

    /// Builds a packet from pre-scanned bytes; used by the decoder.
    init(bytes: [UInt8], spans: [Span]) {
        self.bytes = bytes
        self.spans = spans
    }

    /// Appends a header at the end.
    public mutating func append(_ name: String, _ value: String) {
        let nameStart = Int32(self.bytes.count)
        self.bytes.append(contentsOf: name.utf8)
        let valueStart = Int32(self.bytes.count)
        self.bytes.append(contentsOf: value.utf8)
        self.spans.append(
            Span(nameStart: nameStart, nameEnd: valueStart, valueStart: valueStart, valueEnd: Int32(self.bytes.count))
        )
    }

    /// The number of headers.
    public var count: Int { self.spans.count }

    /// All headers in wire order.
    public var headers: [(name: String, value: String)] {
        self.spans.map { (self.string(from: $0.nameStart, to: $0.nameEnd), self.string(from: $0.valueStart, to: $0.valueEnd)) }
    }

    /// The value of the first header named `name` (case-insensitive), or nil.
    public subscript(_ name: String) -> String? {
        guard let index = self.firstIndex(of: name) else { return nil }
        let span = self.spans[index]
        return self.string(from: span.valueStart, to: span.valueEnd)
    }

    /// Every value of the headers named `name` (case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        var result: [String] = []
        for span in self.spans where self.nameMatches(span, name) {
            result.append(self.string(from: span.valueStart, to: span.valueEnd))
        }
        return result
    }

    /// Whether the message has a header named `name`.
    public func contains(_ name: String) -> Bool {
        self.firstIndex(of: name) != nil
    }

    /// What the first header says the packet is.
    public var kind: Kind {
        guard let first = self.spans.first else { return .empty }
        let value = self.string(from: first.valueStart, to: first.valueEnd)
        if self.nameMatches(first, "Response") { return .response(value) }
        if self.nameMatches(first, "Event") { return .event(value) }
        if self.nameMatches(first, "Action") { return .action(value) }
        return .other(self.string(from: first.nameStart, to: first.nameEnd))
    }

    /// The packet's class, decided by its first header as Asterisk's clients do.
    public enum Kind: Sendable, Hashable {
        /// `Response: Success|Error|Goodbye|Follows` first: a reply to an action.
        case response(String)
        /// `Event: Name` first. OriginateResponse is an event that also has a `Response:` line.
        case event(String)
        /// `Action: Name` first: what a client sends.
        case action(String)
        /// Some other first header.
        case other(String)
        /// No headers at all.
        case empty
    }

    // MARK: internals

    func firstIndex(of name: String) -> Int? {
        for index in self.spans.indices where self.nameMatches(self.spans[index], name) {
            return index
        }
        return nil
    }

    func nameMatches(_ span: Span, _ name: String) -> Bool {
        self.bytesMatch(from: span.nameStart, to: span.nameEnd, name)
    }

    func valueMatches(_ span: Span, _ value: String) -> Bool {
        self.bytesMatch(from: span.valueStart, to: span.valueEnd, value)
    }

    /// Whether the bytes in `start..<end` spell `text`, ignoring ASCII case.
    private func bytesMatch(from start: Int32, to end: Int32, _ text: String) -> Bool {
        let length = Int(end - start)
        var text = text
        return text.withUTF8 { wanted in
            guard wanted.count == length else { return false }
            return self.bytes.withUnsafeBufferPointer { storage in
                var offset = Int(start)
                for byte in wanted {
                    if asciiLower(storage[offset]) != asciiLower(byte) { return false }
                    offset += 1
                }
                return true
            }
        }
    }

    func string(from start: Int32, to end: Int32) -> String {
        self.bytes.withUnsafeBufferPointer { storage in
            String(decoding: UnsafeBufferPointer(rebasing: storage[Int(start)..<Int(end)]), as: UTF8.self)
        }
    }

    /// Calls `body` with each header's raw name and value bytes, in order; the encoder uses it.
    func forEachHeader(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        try self.bytes.withUnsafeBufferPointer { storage in
            for span in self.spans {
                try body(
                    UnsafeBufferPointer(rebasing: storage[Int(span.nameStart)..<Int(span.nameEnd)]),
                    UnsafeBufferPointer(rebasing: storage[Int(span.valueStart)..<Int(span.valueEnd)])
                )
            }
        }
    }
}

func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
}

extension AMIMessage: Hashable {
    /// Two messages are equal when they have the same headers, names and values, in the same order.
    public static func == (lhs: AMIMessage, rhs: AMIMessage) -> Bool {
        guard lhs.spans.count == rhs.spans.count else { return false }
        for (left, right) in zip(lhs.spans, rhs.spans) {
            guard
                lhs.bytes[Int(left.nameStart)..<Int(left.nameEnd)].elementsEqual(rhs.bytes[Int(right.nameStart)..<Int(right.nameEnd)]),
                lhs.bytes[Int(left.valueStart)..<Int(left.valueEnd)].elementsEqual(rhs.bytes[Int(right.valueStart)..<Int(right.valueEnd)])
            else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.spans.count)
        for span in self.spans {
            for byte in self.bytes[Int(span.nameStart)..<Int(span.nameEnd)] { hasher.combine(byte) }
            hasher.combine(0xFF as UInt8)
            for byte in self.bytes[Int(span.valueStart)..<Int(span.valueEnd)] { hasher.combine(byte) }
        }
    }
}

extension AMIMessage: CustomStringConvertible {
    /// Header names whose values are never printed.
    static let redactedHeaders: Set<String> = ["secret", "key"]

    /// The headers as `Key: Value` lines, with secrets (`Secret`, `Key`) redacted.
    public var description: String {
        self.headers.map { header in
            let value = Self.redactedHeaders.contains(header.name.lowercased()) ? "<redacted>" : header.value
            return "\(header.name): \(value)"
        }.joined(separator: "|")
    }
}

extension AMIMessage: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }
}
