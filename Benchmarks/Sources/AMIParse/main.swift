// Parses a recorded AMI stream (banner + events) with cex's decoder, as the client does:
// the bytes arrive in 64 KiB reads, every packet is decoded, typed as an AMIEvent, and its
// Uniqueid read. Prints events/s and MB/s for the best of three runs.
import AsteriskManager
import Foundation
import NIOCore

@main
enum AMIParse {
    static func main() throws {
        guard CommandLine.arguments.count > 1, let data = FileManager.default.contents(atPath: CommandLine.arguments[1]) else {
            FileHandle.standardError.write(Data("usage: AMIParse STREAM_FILE\n".utf8))
            exit(2)
        }
        let bytes = [UInt8](data)
        let megabytes = Double(bytes.count) / 1_000_000
        for typed in [false, true] {
            var best = Double.infinity
            var events = 0
            for _ in 0..<3 {
                let start = ContinuousClock.now
                events = try Self.parse(bytes, typed: typed)
                let elapsed = ContinuousClock.now - start
                best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            let label = typed ? "cex AMIDecoder + typed AMIEvent" : "cex AMIDecoder + Event/Uniqueid lookup"
            print(String(format: "%@: %d events in %.3f s: %.0f events/s, %.1f MB/s", label, events, best, Double(events) / best, megabytes / best))
        }
    }

    static func parse(_ bytes: [UInt8], typed: Bool) throws -> Int {
        var decoder = AMIDecoder(role: .client)
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 17)
        var events = 0
        var uniqueIDs = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 65536)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let inbound = try decoder.decode(buffer: &buffer) {
                guard case .message(let message) = inbound else { continue }
                if typed {
                    if let event = AMIEvent(message) {
                        events += 1
                        if event.uniqueID != nil { uniqueIDs += 1 }
                    }
                } else if message["Event"] != nil {
                    events += 1
                    if message["Uniqueid"] != nil { uniqueIDs += 1 }
                }
            }
            buffer.discardReadBytes()
        }
        precondition(uniqueIDs > 0)
        return events
    }
}
