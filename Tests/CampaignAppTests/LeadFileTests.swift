import Testing

@testable import CampaignApp

/// The lead file's encoding check, against Swift's own UTF-8 validation line by line.
@Suite struct LeadFileTests {
    /// The first line Swift's decoder refuses, 1-based; nil when it refuses none.
    func reference(_ bytes: [UInt8]) -> Int? {
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        return lines.firstIndex { String(validating: $0, as: UTF8.self) == nil }.map { $0 + 1 }
    }

    @Test func theFirstLineThatIsNotUTF8IsFoundWhereverItsBadByteStands() {
        let ascii = Array("phone,name\n+12125550101,Ann Lee\n".utf8)
        let accents = Array("+12125550102,José Núñez 名前\n".utf8)
        let bad: [[UInt8]] = [
            [0xFF],  // never in UTF-8
            [0xC0, 0x80],  // overlong NUL
            [0xED, 0xA0, 0x80],  // a UTF-16 surrogate
            [0xE2, 0x82],  // cut short
            [0x80],  // a continuation byte on its own
            [0xC3, 0x0A, 0xA9],  // a sequence broken by a line break
        ]
        var cases: [[UInt8]] = [[], ascii, ascii + accents, accents + ascii + accents, Array("no line break at the end é".utf8)]
        for sequence in bad {
            cases.append(sequence)
            cases.append(ascii + sequence)
            cases.append(ascii + accents + Array("+1212555".utf8) + sequence + Array("0103,x\n".utf8) + ascii)
            cases.append(accents + ascii + ascii + Array("+12125550104,".utf8) + sequence)
            cases.append(Array("ab".utf8) + sequence + Array("cdefghijklmnop\n".utf8))
        }
        for bytes in cases {
            #expect(LeadImporter.firstLineNotUTF8(bytes) == self.reference(bytes), "\(bytes)")
        }
        #expect(LeadImporter.firstLineNotUTF8(ascii + accents + [0xFF]) == 4)
    }
}
