import Foundation

/// How a lead file's columns map to what cex needs. Headers are matched without regard to case,
/// spaces or punctuation, through the usual aliases, unless the campaign names the column.
/// Every column becomes a template variable under its normalised header name (`First Name` →
/// `first_name`); `first_name`, `last_name`, `name` and `phone` are also filled from their aliases.
public struct LeadColumns: Sendable, Hashable {
    /// The header as written.
    public let header: [String]
    /// Variable names, one per column.
    public let names: [String]
    public let phone: Int
    public let firstName: Int?
    public let lastName: Int?
    public let fullName: Int?
    public let timeZone: Int?

    public static let aliases: [String: [String]] = [
        "phone": ["phone", "phone_number", "phonenumber", "number", "mobile", "mobile_phone", "cell", "cell_phone", "telephone", "tel", "msisdn"],
        "first_name": ["first_name", "firstname", "first", "given_name", "forename"],
        "last_name": ["last_name", "lastname", "last", "surname", "family_name"],
        "name": ["name", "full_name", "fullname", "contact", "contact_name"],
        "time_zone": ["time_zone", "timezone", "tz", "zone"],
    ]

    /// `overrides`: lead column → header text, from the campaign's `columns:`.
    public init(header: [String], overrides: [String: String] = [:]) throws(LeadFileError) {
        self.header = header
        let names = header.map(Self.normalise)
        self.names = names
        var seen: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            if name.isEmpty { throw LeadFileError(line: 1, message: "column \(index + 1) has no name") }
            if let first = seen[name] {
                throw LeadFileError(line: 1, message: "columns \(first + 1) and \(index + 1) have the same name (\(name))")
            }
            seen[name] = index
        }
        func find(_ field: String) throws(LeadFileError) -> Int? {
            if let override = overrides[field] {
                guard let index = names.firstIndex(of: Self.normalise(override)) else {
                    throw LeadFileError(line: 1, message: "the campaign maps \(field) to the column \"\(override)\", which the header does not have")
                }
                return index
            }
            return Self.aliases[field]!.lazy.compactMap { names.firstIndex(of: $0) }.first
        }
        guard let phone = try find("phone") else {
            throw LeadFileError(line: 1, message: "no phone column (looked for \(Self.aliases["phone"]!.joined(separator: ", ")); or map one under columns: in the campaign)")
        }
        self.phone = phone
        self.firstName = try find("first_name")
        self.lastName = try find("last_name")
        self.fullName = try find("name")
        self.timeZone = try find("time_zone")
    }

    /// "First Name " → "first_name".
    public static func normalise(_ header: String) -> String {
        var name = ""
        var gap = false
        for character in header.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() {
            if character.isLetter || character.isNumber {
                if gap, !name.isEmpty { name.append("_") }
                name.append(character)
                gap = false
            } else {
                gap = true
            }
        }
        return name
    }

    /// The template variables a record gives: every column by name, plus the canonical fields.
    public func fields(of values: [String]) -> [String: String] {
        var fields: [String: String] = [:]
        for (name, value) in zip(self.names, values) { fields[name] = value }
        fields["phone"] = values.indices.contains(self.phone) ? values[self.phone] : nil
        let (first, last, name) = self.names(of: values)
        if let first { fields["first_name"] = first }
        if let last { fields["last_name"] = last }
        if let name { fields["name"] = name }
        return fields
    }

    /// First, last and full name, each from its own column or derived from the others.
    public func names(of values: [String]) -> (first: String?, last: String?, full: String?) {
        self.names { $0 < values.count ? values[$0] : nil }
    }

    /// The names from a stored record, reading only the name columns.
    public func names(ofRecord record: String) -> (first: String?, last: String?, full: String?) {
        var reader = CSVReader(bytes: Array(record.utf8))
        guard let parsed = try? reader.next() else { return (nil, nil, nil) }
        return self.names { $0 < parsed.count ? parsed.field($0, in: reader.bytes) : nil }
    }

    func names(_ cell: (Int) -> String?) -> (first: String?, last: String?, full: String?) {
        func value(_ index: Int?) -> String? {
            guard let index, let text = cell(index)?.trimmingSpaces else { return nil }
            return text.isEmpty ? nil : text
        }
        let full = value(self.fullName)
        let first = value(self.firstName) ?? full.flatMap { $0.split(separator: " ").first.map(String.init) }
        let last = value(self.lastName) ?? full.flatMap { name in
            let parts = name.split(separator: " ")
            return parts.count > 1 ? parts.dropFirst().joined(separator: " ") : nil
        }
        return (first, last, full ?? ([first, last].compactMap { $0 }.joined(separator: " ")).nilIfEmpty)
    }
}

extension String {
    var nilIfEmpty: String? { self.isEmpty ? nil : self }

    /// Without leading and trailing whitespace; Foundation is asked only when an end might be some.
    var trimmingSpaces: String {
        // `.whitespaces` is the space separators (Zs) and tab.
        func plain(_ scalar: Unicode.Scalar?) -> Bool { scalar.map { $0 != "\t" && $0.properties.generalCategory != .spaceSeparator } ?? true }
        if plain(self.unicodeScalars.first), plain(self.unicodeScalars.last) { return self }
        return self.trimmingCharacters(in: .whitespaces)
    }
}

/// A lead file that cannot be imported at all.
public struct LeadFileError: Error, Hashable, CustomStringConvertible {
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(self.line): \(self.message)" }
}

/// A lead ready for the store.
public struct ImportedLead: Sendable, Hashable {
    public var line: Int
    public var phone: PhoneNumber
    /// IANA zones, `|`-separated when the number may be in several.
    public var timeZones: String
    /// Where the record is in the file's bytes. The store keeps the record as it was (fields and
    /// quoting untouched, the number as written included): the lead's variables come from it.
    public var record: Range<Int>

    public init(line: Int, phone: PhoneNumber, timeZones: String, record: Range<Int>) {
        self.line = line
        self.phone = phone
        self.timeZones = timeZones
        self.record = record
    }
}

/// A row that is not imported, and why. The reason never repeats the row's values.
public struct RejectedLead: Sendable, Hashable {
    public var line: Int
    public var field: String
    public var reason: String
}

/// Checks one record at a time. Pure: what the campaign already holds and the DNC list are
/// given; numbers seen earlier in the file are remembered.
public struct LeadValidator: Sendable {
    public let columns: LeadColumns
    let parser: PhoneNumberParser
    let defaultTimeZone: String?
    /// Template variables each lead must have, with the columns that can fill them.
    let required: [(name: String, columns: [Int])]
    let doNotCall: Set<String>
    let existing: Set<String>
    var seen: [String: Int] = [:]
    /// Timezone column values seen so far, by a hash of their bytes: checking an IANA name is slow.
    var zoneCache: [UInt64: (bytes: [UInt8], zone: String?)] = [:]

    public enum Result: Sendable, Hashable {
        case lead(ImportedLead)
        case rejected(RejectedLead)
        /// The campaign already has this number: a re-import changes nothing.
        case unchanged
    }

    public init(
        columns: LeadColumns, parser: PhoneNumberParser, defaultTimeZone: String?, requiredVariables: Set<String>,
        doNotCall: Set<String>, existing: Set<String>
    ) throws(LeadFileError) {
        self.columns = columns
        self.parser = parser
        self.defaultTimeZone = defaultTimeZone
        self.doNotCall = doNotCall
        self.existing = existing
        self.seen.reserveCapacity(1024)
        var required: [(String, [Int])] = []
        for variable in requiredVariables.sorted() {
            var sources: [Int] = columns.names.indices.filter { columns.names[$0] == variable }
            switch variable {
            case "first_name": sources += [columns.firstName, columns.fullName].compactMap { $0 }
            case "last_name": sources += [columns.lastName, columns.fullName].compactMap { $0 }
            case "name": sources += [columns.fullName, columns.firstName, columns.lastName].compactMap { $0 }
            case "phone": sources.append(columns.phone)
            default: break
            }
            guard !sources.isEmpty else {
                throw LeadFileError(line: 1, message: "the template uses {{\(variable)}}, and no column gives it")
            }
            required.append((variable, sources))
        }
        self.required = required
    }

    public mutating func check(_ record: CSVRecord, in bytes: [UInt8]) -> Result {
        let line = record.line
        guard record.count == self.columns.names.count else {
            return .rejected(RejectedLead(line: line, field: "", reason: "has \(record.count) fields; the header has \(self.columns.names.count)"))
        }
        let phoneRange = record.rawField(self.columns.phone)
        let number: PhoneNumber
        do {
            number = try bytes.withUnsafeBufferPointer { buffer throws(PhoneNumberError) in
                try self.parser.parse(bytes: UnsafeBufferPointer(rebasing: buffer[phoneRange]))
            }
        } catch {
            return .rejected(RejectedLead(line: line, field: self.columns.header[self.columns.phone], reason: "\(error)"))
        }
        if self.existing.contains(number.e164) { return .unchanged }
        if let first = self.seen[number.e164] {
            return .rejected(RejectedLead(line: line, field: self.columns.header[self.columns.phone], reason: "same number as line \(first)"))
        }
        if self.doNotCall.contains(number.e164) {
            return .rejected(RejectedLead(line: line, field: self.columns.header[self.columns.phone], reason: "on the do-not-call list"))
        }
        for (variable, sources) in self.required {
            let filled = sources.contains { index in
                let range = record.rawField(index)
                return bytes[range].contains { $0 != 0x20 && $0 != 0x09 }
            }
            guard filled else {
                return .rejected(RejectedLead(line: line, field: self.columns.header[sources[0]], reason: "is empty, and the template needs {{\(variable)}}"))
            }
        }

        // Timezone: the column, else the area code, else the campaign default.
        var zones: String?
        if let column = self.columns.timeZone {
            var range = record.rawField(column)
            while let first = range.first, bytes[first] == 0x20 { range = range.dropFirst() }
            while let last = range.last, bytes[last] == 0x20 { range = range.dropLast() }
            if !range.isEmpty {
                guard let zone = self.zone(bytes[range]) else {
                    return .rejected(RejectedLead(line: line, field: self.columns.header[column], reason: "is not an IANA timezone such as America/Chicago"))
                }
                zones = zone
            }
        }
        zones = zones ?? number.nanpAreaCode.flatMap { NANPTimeZones.joined[$0] } ?? self.defaultTimeZone
        guard let zones else {
            return .rejected(RejectedLead(
                line: line, field: self.columns.header[self.columns.phone],
                reason: "no timezone: no timezone column value, not a NANP area code, and the campaign has no default_time_zone"))
        }

        self.seen[number.e164] = line
        return .lead(ImportedLead(line: line, phone: number, timeZones: zones, record: record.range))
    }

    /// The zone a timezone cell names, nil when it names none; cached by the cell's bytes.
    mutating func zone(_ cell: ArraySlice<UInt8>) -> String? {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in cell { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        if let cached = self.zoneCache[hash], cached.bytes.elementsEqual(cell) { return cached.zone }
        let text = String(decoding: cell, as: UTF8.self)
        let zone = TimeZone(identifier: text) != nil ? text : nil
        self.zoneCache[hash] = (Array(cell), zone)
        return zone
    }
}

/// Reads a stored record back into its fields.
public enum LeadRecord {
    public static func values(_ record: String) -> [String] {
        var reader = CSVReader(bytes: Array(record.utf8))
        guard let parsed = try? reader.next() else { return [] }
        return parsed.strings(in: reader.bytes)
    }
}
