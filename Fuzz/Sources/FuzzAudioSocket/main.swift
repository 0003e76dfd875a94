import FuzzDriver
import AudioSocket
import NIOCore

/// Any bytes from Asterisk's side of AudioSocket, in two pieces: frames or an error, never a trap.
runFuzzer { data, size in
    let bytes = FuzzDriver.bytes(data, size)
    let split = size == 0 ? 0 : Int(bytes[0]) % (size + 1)
    var decoder = AudioSocketFrameDecoder()
    var buffer = ByteBuffer()
    for piece in [bytes[..<split], bytes[split...]] {
        buffer.writeBytes(piece)
        while let frame = try? decoder.decode(buffer: &buffer) { _ = frame }
    }
    _ = try? decoder.decodeLast(buffer: &buffer, seenEOF: true)
    return 0
}
