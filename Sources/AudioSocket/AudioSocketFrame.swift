import Foundation
import NIOCore

/// Signed 16-bit little-endian mono PCM formats, by their AudioSocket kind (res/res_audiosocket.h).
public enum AudioFormat: UInt8, Sendable, Hashable, CaseIterable {
    case slin8 = 0x10
    case slin12 = 0x11
    case slin16 = 0x12
    case slin24 = 0x13
    case slin32 = 0x14
    case slin44 = 0x15
    case slin48 = 0x16
    case slin96 = 0x17
    case slin192 = 0x18

    public var sampleRate: Int {
        switch self {
        case .slin8: return 8000
        case .slin12: return 12000
        case .slin16: return 16000
        case .slin24: return 24000
        case .slin32: return 32000
        case .slin44: return 44100
        case .slin48: return 48000
        case .slin96: return 96000
        case .slin192: return 192_000
        }
    }
}

/// One AudioSocket frame: `kind:u8 | length:u16 big-endian | payload` (PROTOCOLS.md §2.1).
public enum AudioSocketFrame: Sendable, Hashable {
    /// 0x00: graceful end of the call.
    case hangup
    /// 0x01: the call's UUID, always the first frame from Asterisk.
    case uuid(UUID)
    /// 0x03: one DTMF digit, `0-9*#A-D`.
    case dtmf(Character)
    /// 0x10–0x18: PCM; the payload length is even and not zero.
    case audio(AudioFormat, ByteBuffer)
    /// 0xFF: an error, with its optional bit set.
    case error(UInt8?)

    public static let headerLength = 3
    public static let maximumPayloadLength = Int(UInt16.max)
    static let dtmfDigits = Set("0123456789*#ABCD".utf8)

    /// Appends the frame's wire form to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .hangup:
            buffer.writeBytes([0x00, 0x00, 0x00])
        case .uuid(let uuid):
            buffer.writeBytes([0x01, 0x00, 0x10])
            withUnsafeBytes(of: uuid.uuid) { _ = buffer.writeBytes($0) }
        case .dtmf(let digit):
            buffer.writeBytes([0x03, 0x00, 0x01, digit.asciiValue ?? UInt8(ascii: "?")])
        case .audio(let format, let payload):
            precondition(payload.readableBytes <= Self.maximumPayloadLength, "audio payload over 65535 bytes")
            buffer.writeInteger(format.rawValue)
            buffer.writeInteger(UInt16(payload.readableBytes))
            buffer.writeImmutableBuffer(payload)
        case .error(let code):
            if let code {
                buffer.writeBytes([0xFF, 0x00, 0x01, code])
            } else {
                buffer.writeBytes([0xFF, 0x00, 0x00])
            }
        }
    }
}

/// A violation of the AudioSocket protocol. Ends only the call it happened on.
public struct AudioSocketError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case unknownKind(UInt8)
        case emptyAudio
        case oddAudioLength
        case badLength(UInt8)
        case badDTMF
        case uuidNotFirst
        case uuidTimeout
        case unknownCall
    }

    private let code: Code
    private init(_ code: Code) { self.code = code }

    /// A kind byte outside 0x00, 0x01, 0x03, 0x10–0x18, 0xFF.
    public static func unknownKind(_ kind: UInt8) -> Self { Self(.unknownKind(kind)) }
    /// An audio frame with no payload: Asterisk ends the call on it.
    public static let emptyAudio = Self(.emptyAudio)
    /// An audio frame with an odd number of bytes: not whole 16-bit samples.
    public static let oddAudioLength = Self(.oddAudioLength)
    /// A UUID frame that is not 16 bytes, or a DTMF frame that is not 1 byte.
    public static func badLength(kind: UInt8) -> Self { Self(.badLength(kind)) }
    /// A DTMF byte outside `0-9*#A-D`.
    public static let badDTMF = Self(.badDTMF)
    /// The first frame of a connection was not the UUID.
    public static let uuidNotFirst = Self(.uuidNotFirst)
    /// No UUID frame within the time allowed.
    public static let uuidTimeout = Self(.uuidTimeout)
    /// The UUID is not a call we placed.
    public static let unknownCall = Self(.unknownCall)

    public var description: String {
        switch self.code {
        case .unknownKind(let kind): return "AudioSocket frame of unknown kind 0x\(String(kind, radix: 16))"
        case .emptyAudio: return "AudioSocket audio frame with no payload"
        case .oddAudioLength: return "AudioSocket audio frame with an odd number of bytes"
        case .badLength(let kind): return "AudioSocket frame of kind 0x\(String(kind, radix: 16)) with the wrong payload length"
        case .badDTMF: return "AudioSocket DTMF frame with a byte that is not a DTMF digit"
        case .uuidNotFirst: return "AudioSocket connection did not start with its UUID frame"
        case .uuidTimeout: return "AudioSocket connection sent no UUID frame in time"
        case .unknownCall: return "AudioSocket UUID does not belong to a call we placed"
        }
    }
}

/// Splits the AudioSocket byte stream into frames, tolerating frames split across reads.
public struct AudioSocketFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = AudioSocketFrame

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> AudioSocketFrame? {
        guard
            let kind = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self)
        else { return nil }
        // Refuse an unknown kind before waiting for its payload.
        let format = AudioFormat(rawValue: kind)
        guard format != nil || [0x00, 0x01, 0x03, 0xFF].contains(kind) else {
            throw AudioSocketError.unknownKind(kind)
        }
        guard buffer.readableBytes >= AudioSocketFrame.headerLength + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: AudioSocketFrame.headerLength)
        var payload = buffer.readSlice(length: Int(length))!

        if let format {
            guard length > 0 else { throw AudioSocketError.emptyAudio }
            guard length % 2 == 0 else { throw AudioSocketError.oddAudioLength }
            return .audio(format, payload)
        }
        switch kind {
        case 0x00:
            return .hangup
        case 0x01:
            guard length == 16, let bytes = payload.readBytes(length: 16) else { throw AudioSocketError.badLength(kind: kind) }
            let uuid = bytes.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }
            return .uuid(UUID(uuid: uuid))
        case 0x03:
            guard length == 1, let byte = payload.readInteger(as: UInt8.self) else { throw AudioSocketError.badLength(kind: kind) }
            guard AudioSocketFrame.dtmfDigits.contains(byte) else { throw AudioSocketError.badDTMF }
            return .dtmf(Character(Unicode.Scalar(byte)))
        default:
            return .error(payload.readInteger(as: UInt8.self))
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> AudioSocketFrame? {
        try self.decode(buffer: &buffer)
    }
}

/// Writes frames; the server's pacer encodes its own frames, the stand-in uses this.
public struct AudioSocketFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = AudioSocketFrame

    public init() {}

    public func encode(data: AudioSocketFrame, out: inout ByteBuffer) throws {
        data.encode(into: &out)
    }
}

extension ByteBuffer {
    /// Reads the readable bytes as little-endian 16-bit samples.
    public func pcmSamples() -> [Int16] {
        let count = self.readableBytes / 2
        return self.withUnsafeReadableBytes { raw in
            [Int16](unsafeUninitializedCapacity: count) { samples, initialized in
                for index in 0..<count {
                    samples[index] = Int16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self))
                }
                initialized = count
            }
        }
    }

    /// Appends samples as little-endian 16-bit PCM.
    public mutating func writePCMSamples(_ samples: some Collection<Int16>) {
        self.reserveCapacity(minimumWritableBytes: samples.count * 2)
        let written: Void? = samples.withContiguousStorageIfAvailable { samples in
            self.writeWithUnsafeMutableBytes(minimumWritableBytes: samples.count * 2) { raw in
                for (index, sample) in samples.enumerated() {
                    raw.storeBytes(of: sample.littleEndian, toByteOffset: index * 2, as: Int16.self)
                }
                return samples.count * 2
            }
        }
        guard written == nil else { return }
        for sample in samples {
            self.writeInteger(sample, endianness: .little)
        }
    }
}
