#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// What the AMI byte stream carries.
public enum AMIInbound: Sendable, Hashable {
    /// The server's first line, e.g. `Asterisk Call Manager/11.0.0`.
    case banner(String)
    /// One packet.
    case message(AMIMessage)
}

/// Splits the AMI byte stream into packets (main/manager.c framing).
///
/// Lines end in CRLF or a bare LF; a packet ends at an empty line; blank lines between packets
/// are skipped. A line over 1,024 bytes or a packet over 128 headers is an error, so the
/// buffer never grows without bound. Scanning resumes where the previous call stopped, so
/// input that arrives a byte at a time costs no more than input that arrives at once.
public struct AMIDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = AMIInbound

    /// Asterisk reads lines into a 1,024-byte buffer.
    public static let maximumLineLength = 1024
    /// Asterisk keeps at most 128 headers per packet (`AST_MAX_MANHEADERS`).
    public static let maximumHeaderCount = 128

    /// Which end of the connection decodes: a client first reads the server's banner line.
    public enum Role: Sendable {
        case client
        case server
    }

    private var expectsBanner: Bool
    /// Bytes from the reader index already split into complete header lines of the current packet.
    private var scanned = 0
    private var spans: [AMIMessage.Span] = []

    public init(role: Role) {
        self.expectsBanner = role == .client
    }

    private enum Step {
        case needMore
        case skip(Int)
        case banner(String, Int)
        case packet(Int)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> AMIInbound? {
        while true {
            let step = try buffer.withUnsafeReadableBytes { try self.scan($0) }
            switch step {
            case .needMore:
                return nil
            case .skip(let count):
                buffer.moveReaderIndex(forwardBy: count)
            case .banner(let banner, let count):
                buffer.moveReaderIndex(forwardBy: count)
                self.expectsBanner = false
                return .banner(banner)
            case .packet(let count):
                let bytes = buffer.readBytes(length: count)!
                let message = AMIMessage(bytes: bytes, spans: self.spans)
                self.spans = []
                self.scanned = 0
                return .message(message)
            }
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> AMIInbound? {
        if let inbound = try self.decode(buffer: &buffer) {
            return inbound
        }
        // Trailing blank lines are harmless; anything else is a packet cut short.
        if !self.spans.isEmpty || buffer.readableBytesView.contains(where: { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }) {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw AMIProtocolError.truncatedPacket
        }
        return nil
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer) throws -> Step {
        guard let base = bytes.baseAddress else { return .needMore }
        let count = bytes.count
        let limit = Self.maximumLineLength

        if self.expectsBanner {
            guard let newline = Self.find(UInt8(ascii: "\n"), base, from: 0, to: count) else {
                if count > limit + 1 { throw AMIProtocolError.lineTooLong(line: 1) }
                return .needMore
            }
            let end = newline > 0 && bytes[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
            guard end <= limit else { throw AMIProtocolError.lineTooLong(line: 1) }
            let banner = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
            guard banner.hasPrefix("Asterisk Call Manager") else { throw AMIProtocolError.unexpectedGreeting }
            return .banner(banner, newline + 1)
        }

        var position = self.scanned
        while position < count {
            guard let newline = Self.find(UInt8(ascii: "\n"), base, from: position, to: count) else {
                if count - position > limit + 1 { throw AMIProtocolError.lineTooLong(line: self.spans.count + 1) }
                break
            }
            var end = newline
            if end > position && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            guard end - position <= limit else { throw AMIProtocolError.lineTooLong(line: self.spans.count + 1) }

            if end == position {
                if self.spans.isEmpty {
                    // A blank line between packets.
                    self.scanned = 0
                    return .skip(newline + 1)
                }
                return .packet(newline + 1)
            }

            guard let colon = Self.find(UInt8(ascii: ":"), base, from: position, to: end) else {
                throw AMIProtocolError.malformedLine(line: self.spans.count + 1)
            }
            var valueStart = colon + 1
            while valueStart < end && (bytes[valueStart] == UInt8(ascii: " ") || bytes[valueStart] == UInt8(ascii: "\t")) {
                valueStart += 1
            }
            guard self.spans.count < Self.maximumHeaderCount else { throw AMIProtocolError.tooManyHeaders }
            if self.spans.isEmpty { self.spans.reserveCapacity(16) }
            self.spans.append(
                AMIMessage.Span(
                    nameStart: Int32(position),
                    nameEnd: Int32(colon),
                    valueStart: Int32(valueStart),
                    valueEnd: Int32(end)
                )
            )
            position = newline + 1
        }
        self.scanned = position
        return .needMore
    }

    @inline(__always)
    private static func find(_ byte: UInt8, _ base: UnsafeRawPointer, from start: Int, to end: Int) -> Int? {
        guard start < end, let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}

/// Writes packets as `Key: Value` CRLF lines and a blank line.
public struct AMIEncoder: MessageToByteEncoder {
    public typealias OutboundIn = AMIMessage

    public init() {}

    public func encode(data message: AMIMessage, out: inout ByteBuffer) throws {
        try Self.write(message, into: &out)
    }

    /// Appends the wire form of `message` to `out`; refuses CR or LF inside a header.
    public static func write(_ message: AMIMessage, into out: inout ByteBuffer) throws {
        out.reserveCapacity(minimumWritableBytes: message.bytes.count + message.count * 4 + 2)
        try message.forEachHeader { name, value in
            guard !name.contains(where: Self.isLineBreak), !value.contains(where: Self.isLineBreak) else {
                throw AMIProtocolError.headerInjection
            }
            out.writeBytes(name)
            out.writeStaticString(": ")
            out.writeBytes(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
    }

    private static func isLineBreak(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }
}
