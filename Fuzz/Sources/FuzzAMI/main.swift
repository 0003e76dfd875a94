import FuzzDriver
import AsteriskManager
import NIOCore

/// Any bytes from an AMI server, in two pieces: the decoder yields a banner, messages or an
/// `AMIProtocolError`, never traps, and events it yields are read as `AMIEvent`s.
runFuzzer { data, size in
    let bytes = FuzzDriver.bytes(data, size)
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    var decoder = AMIDecoder(role: .client)
    var buffer = ByteBuffer()
    for piece in [bytes[..<split], bytes[split...]] {
        buffer.writeBytes(piece)
        while let item = try? decoder.decode(buffer: &buffer) {
            if case .message(let message) = item { _ = AMIEvent(message)?.uniqueID }
        }
    }
    _ = try? decoder.decodeLast(buffer: &buffer, seenEOF: true)
    return 0
}
