/// A violation of the AMI wire format, by either peer.
///
/// The description names the rule that was broken and never the packet's content, so it is
/// safe to log: packets carry phone numbers and secrets.
public struct AMIProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case lineTooLong
        case tooManyHeaders
        case malformedLine
        case unexpectedGreeting
        case truncatedPacket
        case headerInjection
    }

    private let code: Code
    /// The 1-based line of the packet where the problem was found, when known.
    public let line: Int?

    private init(_ code: Code, line: Int? = nil) {
        self.code = code
        self.line = line
    }

    /// A line longer than `AMIDecoder.maximumLineLength` bytes (Asterisk: "line too long").
    public static func lineTooLong(line: Int) -> Self { Self(.lineTooLong, line: line) }
    /// A packet with more than `AMIDecoder.maximumHeaderCount` headers.
    public static let tooManyHeaders = Self(.tooManyHeaders)
    /// A line inside a packet without the `Key: Value` colon.
    public static func malformedLine(line: Int) -> Self { Self(.malformedLine, line: line) }
    /// The server's first line was not an `Asterisk Call Manager/x.y` banner.
    public static let unexpectedGreeting = Self(.unexpectedGreeting)
    /// The connection closed in the middle of a packet.
    public static let truncatedPacket = Self(.truncatedPacket)
    /// A header name or value to be sent contains CR or LF, which would forge extra headers.
    public static let headerInjection = Self(.headerInjection)

    public var description: String {
        let place = self.line.map { " (line \($0) of the packet)" } ?? ""
        switch self.code {
        case .lineTooLong: return "AMI line longer than \(AMIDecoder.maximumLineLength) bytes\(place)"
        case .tooManyHeaders: return "AMI packet with more than \(AMIDecoder.maximumHeaderCount) headers"
        case .malformedLine: return "AMI line without a 'Key: Value' colon\(place)"
        case .unexpectedGreeting: return "the server did not greet with an 'Asterisk Call Manager/' banner"
        case .truncatedPacket: return "the AMI connection closed in the middle of a packet"
        case .headerInjection: return "an AMI header name or value contains a line break"
        }
    }
}
