import Foundation

/// An RFC 4180 reader over bytes: a UTF-8 BOM is skipped, records end in CRLF or LF, quoted
/// fields may hold commas, doubled quotes and line breaks, and every cell is text: nothing is
/// trimmed or converted, so a leading "+" or "0" survives.
///
/// The reader is a single-pass state machine over the buffer it is given. A record is handed
/// out as byte ranges; `CSVRecord.field(_:)` builds a `String` only for the fields asked for.
public struct CSVReader: Sendable {
    public let bytes: [UInt8]
    private var position: Int
    /// The 1-based line the next record starts on.
    private var line = 1

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        self.position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    }

    /// The next record, or nil at the end. Blank lines between records are skipped.
    public mutating func next() throws(CSVError) -> CSVRecord? {
        let count = self.bytes.count
        // Skip blank lines.
        while self.position < count, self.bytes[self.position] == 0x0A || self.bytes[self.position] == 0x0D {
            if self.bytes[self.position] == 0x0A { self.line += 1 }
            self.position += 1
        }
        guard self.position < count else { return nil }

        let start = self.position
        let firstLine = self.line
        var fields: [CSVRecord.Field] = []
        fields.reserveCapacity(16)
        var index = self.position
        var line = self.line
        defer { self.line = line }
        let (record, end) = try self.bytes.withUnsafeBufferPointer { (buffer: UnsafeBufferPointer<UInt8>) throws(CSVError) -> (CSVRecord, Int) in
            while true {
                // One field starts at `index`.
                if index < count, buffer[index] == 0x22 {
                    let quoteLine = line
                    var cursor = index + 1
                    var escaped = false
                    while true {
                        guard cursor < count else {
                            throw CSVError(line: quoteLine, message: "a quoted field is never closed")
                        }
                        let byte = buffer[cursor]
                        if byte == 0x22 {
                            if cursor + 1 < count, buffer[cursor + 1] == 0x22 {
                                escaped = true
                                cursor += 2
                                continue
                            }
                            break
                        }
                        if byte == 0x0A { line += 1 }
                        cursor += 1
                    }
                    fields.append(CSVRecord.Field(start: index + 1, end: cursor, quoted: escaped))
                    cursor += 1
                    // After the closing quote: a separator, a line end or the end.
                    guard cursor >= count || buffer[cursor] == 0x2C || buffer[cursor] == 0x0A || buffer[cursor] == 0x0D else {
                        throw CSVError(line: line, message: "unexpected text after a closing quote in field \(fields.count)")
                    }
                    index = cursor
                } else {
                    var cursor = index
                    while cursor < count {
                        let byte = buffer[cursor]
                        if byte == 0x2C || byte == 0x0A || byte == 0x0D { break }
                        cursor += 1
                    }
                    fields.append(CSVRecord.Field(start: index, end: cursor, quoted: false))
                    index = cursor
                }
                // Separator, record end, or end of input.
                if index < count, buffer[index] == 0x2C {
                    index += 1
                    continue
                }
                let end = index
                if index < count, buffer[index] == 0x0D { index += 1 }
                if index < count, buffer[index] == 0x0A {
                    index += 1
                    line += 1
                }
                return (CSVRecord(line: firstLine, range: start..<end, fields: fields), index)
            }
        }
        self.position = end
        return record
    }
}

/// One record: where it is in the input and where its fields are.
public struct CSVRecord: Sendable, Hashable {
    struct Field: Sendable, Hashable {
        var start: Int
        var end: Int
        /// Quoted with doubled quotes inside, which reading must undo.
        var quoted: Bool
    }

    /// The 1-based line the record starts on.
    public var line: Int
    /// The record's bytes in the input, without its line end.
    public var range: Range<Int>
    var fields: [Field]

    public var count: Int { self.fields.count }

    /// Field `index` as text (quotes undone).
    public func field(_ index: Int, in bytes: [UInt8]) -> String {
        let field = self.fields[index]
        guard field.quoted else { return String(decoding: bytes[field.start..<field.end], as: UTF8.self) }
        var unescaped: [UInt8] = []
        unescaped.reserveCapacity(field.end - field.start)
        var index = field.start
        while index < field.end {
            unescaped.append(bytes[index])
            // A doubled quote stands for one.
            index += bytes[index] == 0x22 && index + 1 < field.end && bytes[index + 1] == 0x22 ? 2 : 1
        }
        return String(decoding: unescaped, as: UTF8.self)
    }

    /// Field `index`'s raw bytes, without quotes; escaped quotes are still doubled.
    public func rawField(_ index: Int) -> Range<Int> {
        self.fields[index].start..<self.fields[index].end
    }

    /// Every field as text.
    public func strings(in bytes: [UInt8]) -> [String] {
        (0..<self.count).map { self.field($0, in: bytes) }
    }
}

/// A CSV file that cannot be read as a whole: the line it breaks on.
public struct CSVError: Error, Hashable, CustomStringConvertible {
    public var line: Int
    public var message: String

    public var description: String { "line \(self.line): \(self.message)" }
}

/// Writes RFC 4180 records: CRLF line ends, fields quoted when they hold a comma, a quote, a
/// line break or edge spaces. With `guardFormulas`, a cell a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`, as OWASP advises; phone
/// numbers in E.164 form are such cells, and keep their "+" this way.
public struct CSVWriter: Sendable {
    public var guardFormulas: Bool

    public init(guardFormulas: Bool = true) {
        self.guardFormulas = guardFormulas
    }

    public func record(_ fields: [String]) -> String {
        var bytes: [UInt8] = []
        self.append(fields, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public func cell(_ value: String) -> String {
        var bytes: [UInt8] = []
        self.appendCell(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One record with its CRLF, appended as bytes (a report writes millions of cells).
    public func append(_ fields: [String], to out: inout [UInt8]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(0x2C) }
            self.appendCell(field, to: &out)
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    public func appendCell(_ value: String, to out: inout [UInt8]) {
        let utf8 = value.utf8
        guard let first = utf8.first else { return }
        let guarded = self.guardFormulas && Self.isFormulaStart(first) && !Self.isNegativeNumber(value)
        let needsQuotes = (!guarded && first == 0x20) || utf8.last == 0x20 || utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
        if needsQuotes { out.append(0x22) }
        if guarded { out.append(0x27) }
        if needsQuotes {
            for byte in utf8 {
                out.append(byte)
                if byte == 0x22 { out.append(0x22) }
            }
            out.append(0x22)
        } else {
            out.append(contentsOf: utf8)
        }
    }

    /// `=`, `+`, `-`, `@`, tab and carriage return: what spreadsheets read as the start of a formula.
    static func isFormulaStart(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D: true
        default: false
        }
    }

    /// "-0.50": a number a spreadsheet reads as a number, not a formula.
    static func isNegativeNumber(_ text: String) -> Bool {
        let rest = text.utf8.dropFirst()
        return text.utf8.first == 0x2D && !rest.isEmpty && rest.allSatisfy { ($0 >= 48 && $0 <= 57) || $0 == 0x2E }
    }
}

/// Fast text for report cells: formatters from Foundation cost microseconds per call, and a
/// report of a million rows calls them millions of times.
public enum ReportText {
    /// "2026-07-13T18:00:00Z", whole seconds, UTC.
    public static func iso8601(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var text: [UInt8] = []
        text.reserveCapacity(20)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                text.append(UInt8(48 + value / divisor % 10))
                divisor /= 10
            }
        }
        if year < 0 || year > 9999 {
            text.append(contentsOf: String(year).utf8)
        } else {
            digits(year, 4)
        }
        text.append(0x2D)
        digits(month, 2)
        text.append(0x2D)
        digits(day, 2)
        text.append(0x54)
        digits(time / 3600, 2)
        text.append(0x3A)
        digits(time / 60 % 60, 2)
        text.append(0x3A)
        digits(time % 60, 2)
        text.append(0x5A)
        return String(decoding: text, as: UTF8.self)
    }

    /// `value` with exactly `places` decimals, rounded half away from zero: (36.84, 1) → "36.8".
    public static func decimal(_ value: Double, places: Int) -> String {
        var scale = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((abs(value) * Double(scale)).rounded())
        var text = value < 0 && scaled != 0 ? "-" : ""
        text += String(scaled / scale)
        guard places > 0 else { return text }
        let fraction = String(scaled % scale)
        text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        return text
    }
}
