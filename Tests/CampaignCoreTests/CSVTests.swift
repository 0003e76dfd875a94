import Foundation
import Testing

@testable import CampaignCore

@Suite struct CSVTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func read(_ text: String) throws -> [[String]] {
        var reader = CSVReader(bytes: Array(text.utf8))
        var rows: [[String]] = []
        while let record = try reader.next() { rows.append(record.strings(in: reader.bytes)) }
        return rows
    }

    @Test func theTrickyFileReadsExactlyAsPythonsCSVModuleReadsIt() throws {
        let bytes = Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("tricky.csv")))
        #expect(bytes.starts(with: [0xEF, 0xBB, 0xBF]))
        let reference = try JSONDecoder().decode([[String]].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tricky.ref.json")))
        var reader = CSVReader(bytes: bytes)
        var rows: [[String]] = []
        while let record = try reader.next() { rows.append(record.strings(in: bytes)) }
        #expect(rows == reference)
    }

    @Test func everyCellStaysText() throws {
        let rows = try self.read("phone,zip,id\n+12125550101,02134,007\n")
        #expect(rows[1] == ["+12125550101", "02134", "007"])
    }

    @Test func recordsKnowTheLineTheyStartOnAcrossQuotedLineBreaksAndBlankLines() throws {
        var reader = CSVReader(bytes: Array("a,b\r\n\"x\r\ny\",1\r\n\r\nz,2\n".utf8))
        let lines = try [reader.next(), reader.next(), reader.next()].map { $0?.line }
        #expect(lines == [1, 2, 5])
        #expect(try reader.next() == nil)
    }

    @Test func anUnclosedQuoteFailsTheFileAtTheLineWhereTheQuoteOpened() throws {
        var reader = CSVReader(bytes: Array("a,b\n1,2\n3,\"open\n4,5\n".utf8))
        _ = try reader.next()
        _ = try reader.next()
        #expect(throws: CSVError(line: 3, message: "a quoted field is never closed")) { try reader.next() }
    }

    @Test func textAfterAClosingQuoteIsAnError() throws {
        var reader = CSVReader(bytes: Array("a,b\n\"x\"y,2\n".utf8))
        _ = try reader.next()
        #expect(throws: CSVError.self) { try reader.next() }
    }

    @Test func aQuoteInsideAnUnquotedFieldIsKeptAsPythonKeepsIt() throws {
        #expect(try self.read("h\n5'11\"\n")[1] == ["5'11\""])
    }

    @Test func emptyFieldsAndATrailingSeparatorCount() throws {
        #expect(try self.read("a,b,c\n,,\n")[1] == ["", "", ""])
    }

    @Test func theWriterRoundTripsEveryTrickyValue() throws {
        let reference = try JSONDecoder().decode([[String]].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tricky.ref.json")))
        let writer = CSVWriter(guardFormulas: false)
        let text = reference.map(writer.record).joined()
        #expect(text.hasSuffix("\r\n"))
        #expect(try self.read(text) == reference)
    }

    @Test func cellsASpreadsheetWouldRunAreDefused() {
        let writer = CSVWriter()
        #expect(writer.cell("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"")
        #expect(writer.cell("+12125550101") == "'+12125550101")
        #expect(writer.cell("-1+A1") == "'-1+A1")
        #expect(writer.cell("-0.50") == "-0.50")
        #expect(writer.cell("@SUM(A1)") == "'@SUM(A1)")
        #expect(writer.cell("Ana") == "Ana")
        #expect(writer.cell(" padded") == "\" padded\"")
    }
}
