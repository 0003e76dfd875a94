/// Cuts 16-bit little-endian PCM that arrives in pieces of any size (odd ones too: a sample may
/// be split between two pieces) into frames of `frameSamples`; a WAV header at the very start is
/// skipped. A value with no I/O.
public struct PCMFramer: Sendable, Hashable {
    public let frameSamples: Int
    private var pending: [UInt8] = []
    private var samples: [Int16] = []
    private var started = false

    /// 160 samples: 20 ms at 8 kHz.
    public init(frameSamples: Int = 160) {
        self.frameSamples = frameSamples
    }

    /// The whole frames `bytes` completes.
    public mutating func append(_ bytes: some Sequence<UInt8>) -> [[Int16]] {
        self.pending.append(contentsOf: bytes)
        if !self.started {
            // Enough to tell a RIFF header from audio.
            guard self.pending.count >= 44 else { return [] }
            self.started = true
            if self.pending.starts(with: Array("RIFF".utf8)), self.pending[8..<12].elementsEqual("WAVE".utf8) {
                self.pending.removeFirst(Self.dataOffset(self.pending) ?? 44)
            }
        }
        let whole = self.pending.count / 2 * 2
        var index = 0
        while index < whole {
            self.samples.append(Int16(bitPattern: UInt16(self.pending[index]) | UInt16(self.pending[index + 1]) << 8))
            index += 2
        }
        self.pending.removeFirst(whole)
        var frames: [[Int16]] = []
        while self.samples.count >= self.frameSamples {
            frames.append(Array(self.samples.prefix(self.frameSamples)))
            self.samples.removeFirst(self.frameSamples)
        }
        return frames
    }

    /// What is left at the end: a short last frame (a dangling odd byte is dropped).
    public mutating func finish() -> [Int16] {
        var frames: [[Int16]] = []
        if !self.started {
            // Too short to hold a header: it is all audio.
            self.started = true
            let short = self.pending
            self.pending = []
            frames = self.append(short)
        }
        defer { self.samples = [] }
        return frames.flatMap { $0 } + self.samples
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
