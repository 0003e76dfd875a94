/// One server-sent event: its `data:` lines joined by line breaks, and its `event:` and `id:` fields.
public struct ServerSentEvent: Sendable, Hashable {
    public var event: String?
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// The event on the wire: its fields, one `data:` line per line of data, then a blank line.
    public var encoded: String {
        var text = ""
        if let event = self.event { text += "event: \(event)\n" }
        if let id = self.id { text += "id: \(id)\n" }
        for line in self.data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        return text + "\n"
    }
}

/// Reads server-sent events from bytes that arrive in pieces of any size, as the WHATWG rules
/// (and the OpenAI clients) read them:
/// - lines end with CRLF, LF or CR, also when the CR and the LF come in different pieces;
/// - `field: value`, with one optional space after the colon; a line without a colon is a field with an empty value;
/// - lines starting with `:` are comments (keep-alives);
/// - several `data:` lines join with `\n`; a blank line ends the event;
/// - an event still open when the stream ends is dropped.
///
/// Text is decoded per line, so a UTF-8 character split between pieces arrives whole.
public struct ServerSentEventParser: Sendable {
    private var line: [UInt8] = []
    /// The last byte was a CR: an LF right after it belongs to the same line end.
    private var afterCR = false
    private var event: String?
    private var data: [String] = []
    private var id: String?
    private var hasFields = false

    public init() {}

    /// Events completed by `bytes`, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if self.afterCR {
                self.afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                self.afterCR = true
                if let event = self.endLine() { events.append(event) }
            case 0x0A:
                if let event = self.endLine() { events.append(event) }
            default:
                self.line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> ServerSentEvent? {
        defer { self.line.removeAll(keepingCapacity: true) }
        guard !self.line.isEmpty else { return self.dispatch() }
        guard self.line[0] != UInt8(ascii: ":") else { return nil }
        let colon = self.line.firstIndex(of: UInt8(ascii: ":"))
        let name = String(decoding: self.line[..<(colon ?? self.line.endIndex)], as: UTF8.self)
        var valueStart = colon.map { $0 + 1 } ?? self.line.endIndex
        if valueStart < self.line.endIndex, self.line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = String(decoding: self.line[valueStart...], as: UTF8.self)
        switch name {
        case "data": self.data.append(value)
        case "event": self.event = value
        case "id" where !value.contains("\u{0}"): self.id = value
        default: return nil  // `retry` and unknown fields change nothing here
        }
        self.hasFields = true
        return nil
    }

    private mutating func dispatch() -> ServerSentEvent? {
        guard self.hasFields else { return nil }
        defer {
            self.event = nil
            self.data.removeAll()
            self.hasFields = false
        }
        return ServerSentEvent(event: self.event, data: self.data.joined(separator: "\n"), id: self.id)
    }
}
