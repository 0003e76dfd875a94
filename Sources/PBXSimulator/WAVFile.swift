/// Reads and writes RIFF WAVE files of 16-bit little-endian mono PCM.
public struct WAVFile: Sendable, Hashable {
    public var sampleRate: Int
    public var samples: [Int16]

    public init(sampleRate: Int, samples: [Int16]) {
        self.sampleRate = sampleRate
        self.samples = samples
    }

    public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses a WAV file; only PCM 16-bit mono is accepted.
    public init(bytes: [UInt8]) throws {
        func u32(_ offset: Int) -> Int {
            Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
        }
        func u16(_ offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw FormatError(description: "not a RIFF WAVE file")
        }
        var offset = 12
        var format: (channels: Int, rate: Int, bits: Int, tag: Int)?
        while offset + 8 <= bytes.count {
            let id = bytes[offset..<offset + 4]
            let size = u32(offset + 4)
            let body = offset + 8
            guard body + size <= bytes.count || id.elementsEqual("data".utf8) else { break }
            if id.elementsEqual("fmt ".utf8), size >= 16 {
                format = (u16(body + 2), u32(body + 4), u16(body + 14), u16(body))
            } else if id.elementsEqual("data".utf8) {
                guard let format else { throw FormatError(description: "WAV data chunk before its fmt chunk") }
                guard format.tag == 1 || format.tag == 0xFFFE, format.bits == 16, format.channels == 1 else {
                    throw FormatError(description: "WAV must be 16-bit PCM mono (has \(format.channels) channel(s), \(format.bits) bits)")
                }
                let end = min(bytes.count, body + size)
                let count = (end - body) / 2
                self.sampleRate = format.rate
                self.samples = (0..<count).map { Int16(bitPattern: UInt16(u16(body + $0 * 2))) }
                return
            }
            offset = body + size + (size & 1)
        }
        throw FormatError(description: "WAV file has no data chunk")
    }

    /// The file's bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        func u32(_ value: Int) { out += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24 & 0xFF)] }
        func u16(_ value: Int) { out += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        out += Array("RIFF".utf8)
        u32(36 + self.samples.count * 2)
        out += Array("WAVEfmt ".utf8)
        u32(16)
        u16(1)
        u16(1)
        u32(self.sampleRate)
        u32(self.sampleRate * 2)
        u16(2)
        u16(16)
        out += Array("data".utf8)
        u32(self.samples.count * 2)
        for sample in self.samples { u16(Int(UInt16(bitPattern: sample))) }
        return out
    }
}
