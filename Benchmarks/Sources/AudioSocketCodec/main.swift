// AudioSocket frame throughput: encode N 320-byte audio frames into one stream, then decode it
// in 64 KiB reads. Prints frames/s and MB/s for each, best of three.
import AudioSocket
import Foundation
import NIOCore

@main
enum AudioSocketCodec {
    static func main() throws {
        let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
        var payload = ByteBuffer()
        payload.writePCMSamples((0..<160).map { Int16($0 * 100) })
        let frame = AudioSocketFrame.audio(.slin8, payload)

        var encodeBest = Double.infinity
        var stream = ByteBuffer()
        for _ in 0..<3 {
            stream = ByteBufferAllocator().buffer(capacity: count * 323)
            let start = ContinuousClock.now
            for _ in 0..<count { frame.encode(into: &stream) }
            encodeBest = min(encodeBest, Self.seconds(ContinuousClock.now - start))
        }

        var decodeBest = Double.infinity
        for _ in 0..<3 {
            var decoder = AudioSocketFrameDecoder()
            var input = stream
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 17)
            var decoded = 0
            var samples = 0
            let start = ContinuousClock.now
            while input.readableBytes > 0 {
                var chunk = input.readSlice(length: min(65536, input.readableBytes))!
                buffer.writeBuffer(&chunk)
                while let frame = try decoder.decode(buffer: &buffer) {
                    decoded += 1
                    if case .audio(_, let bytes) = frame { samples += bytes.pcmSamples().count }
                }
                buffer.discardReadBytes()
            }
            precondition(decoded == count && samples == count * 160)
            decodeBest = min(decodeBest, Self.seconds(ContinuousClock.now - start))
        }
        let megabytes = Double(stream.readableBytes) / 1_000_000
        print(String(format: "AudioSocket encode: %d frames in %.3f s: %.0f frames/s, %.0f MB/s", count, encodeBest, Double(count) / encodeBest, megabytes / encodeBest))
        print(String(format: "AudioSocket decode (+ samples to [Int16]): %d frames in %.3f s: %.0f frames/s, %.0f MB/s", count, decodeBest, Double(count) / decodeBest, megabytes / decodeBest))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
