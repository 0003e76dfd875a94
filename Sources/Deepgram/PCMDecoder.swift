/// Turns 16-bit little-endian PCM that arrives in pieces of any size (odd ones too: a sample may
/// be split between two pieces) into samples, as many as each piece completes; a WAV header at
/// the very start is skipped. The call's outbound queue cuts the samples into 20 ms frames.
/// A value with no I/O.
public struct PCMDecoder: Sendable, Hashable {
    /// Bytes not yet made into samples: the start, until it can be told from a header, or the
    /// first byte of a sample split between pieces.
    private var pending: [UInt8] = []
    private var started = false

    public init() {}

    /// Every whole sample `bytes` completes (none while the start may still be a header).
    public mutating func decode(_ bytes: some Collection<UInt8>) -> [Int16] {
        self.pending.append(contentsOf: bytes)
        if !self.started {
            // Enough to tell a RIFF header from audio.
            guard self.pending.count >= 44 else { return [] }
            self.started = true
            if self.pending.starts(with: Array("RIFF".utf8)), self.pending[8..<12].elementsEqual("WAVE".utf8) {
                self.pending.removeFirst(min(self.pending.count, Self.dataOffset(self.pending) ?? 44))
            }
        }
        let count = self.pending.count / 2
        let samples = self.pending.withUnsafeBytes { raw in
            [Int16](unsafeUninitializedCapacity: count) { samples, initialized in
                for index in 0..<count {
                    samples[index] = Int16(littleEndian: raw.loadUnaligned(fromByteOffset: index * 2, as: Int16.self))
                }
                initialized = count
            }
        }
        self.pending.removeFirst(count * 2)
        return samples
    }

    /// What is left at the end: audio too short to hold a header (a dangling odd byte is dropped).
    public mutating func finish() -> [Int16] {
        guard !self.started else { return [] }
        self.started = true
        return self.decode([])
    }

    /// Where the `data` chunk's samples begin in a RIFF/WAVE header.
    static func dataOffset(_ bytes: [UInt8]) -> Int? {
        var offset = 12
        while offset + 8 <= bytes.count {
            let size = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 | Int(bytes[offset + 7]) << 24
            if bytes[offset..<(offset + 4)].elementsEqual("data".utf8) { return offset + 8 }
            offset += 8 + size + size % 2
        }
        return nil
    }
}
