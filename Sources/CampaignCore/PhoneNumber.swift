/// A phone number in E.164 form (`+` and up to 15 digits).
public struct PhoneNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let e164: String

    /// The NANP area code, for numbers under +1.
    public var nanpAreaCode: Int? {
        let utf8 = self.e164.utf8
        guard utf8.count == 12 else { return nil }
        var index = utf8.index(after: utf8.startIndex)
        guard utf8[index] == UInt8(ascii: "1") else { return nil }
        var code = 0
        for _ in 0..<3 {
            index = utf8.index(after: index)
            code = code * 10 + Int(utf8[index] - 48)
        }
        return code
    }

    /// Accepts a number already in E.164 form (as stored); nil for anything else.
    public init?(e164: String) {
        let utf8 = e164.utf8
        guard utf8.first == UInt8(ascii: "+"), (8...16).contains(utf8.count), utf8.dropFirst().allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            return nil
        }
        self.e164 = e164
    }

    fileprivate init(digits: ArraySlice<UInt8>) {
        self.e164 = "+" + String(decoding: digits, as: UTF8.self)
    }

    public var description: String { self.e164 }

    public static func < (lhs: PhoneNumber, rhs: PhoneNumber) -> Bool { lhs.e164 < rhs.e164 }
}

/// Why a value is not a phone number we can dial. The description never repeats the value.
public struct PhoneNumberError: Error, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { self.reason }

    static let empty = PhoneNumberError(reason: "is empty")
    static let letters = PhoneNumberError(reason: "has letters or symbols that are not part of a number")
    static let tooLong = PhoneNumberError(reason: "has more than 15 digits")
    static let tooShort = PhoneNumberError(reason: "has too few digits")
    static let unknownCountry = PhoneNumberError(reason: "starts with no known country calling code")
    static let badLength = PhoneNumberError(reason: "has the wrong number of digits for its country")
    static let nanpAreaCode = PhoneNumberError(reason: "has an area code that is not in service in the NANP")
    static let nanpExchange = PhoneNumberError(reason: "has an exchange that cannot be dialled (it starts with 0 or 1, or is N11)")
}

/// Normalises numbers as people write them (spaces, dashes, dots, brackets, national trunk
/// prefixes, 00 or 011 international prefixes) to E.164, for a default country.
public struct PhoneNumberParser: Sendable {
    public let region: String
    let callingCode: Int
    let trunkPrefix: [UInt8]?
    let nationalLengths: Set<Int>

    /// `region` is an ISO 3166 code such as US, CA, GB or DE.
    public init(defaultRegion region: String) throws(PhoneNumberError) {
        guard let entry = CountryCallingCodes.regions[region.uppercased()] else {
            throw PhoneNumberError(reason: "default_country \(region) is not a known ISO 3166 region")
        }
        self.region = region.uppercased()
        self.callingCode = entry.code
        self.trunkPrefix = entry.trunkPrefix.map { Array($0.utf8) }
        self.nationalLengths = Set(entry.lengths)
    }

    public static func isKnownRegion(_ region: String) -> Bool {
        CountryCallingCodes.regions[region.uppercased()] != nil
    }

    public func parse(_ text: String) throws(PhoneNumberError) -> PhoneNumber {
        try Array(text.utf8).withUnsafeBufferPointer { (bytes: UnsafeBufferPointer<UInt8>) throws(PhoneNumberError) -> PhoneNumber in
            try self.parse(bytes: bytes)
        }
    }

    /// Parses UTF-8 bytes; the import's fast path.
    public func parse(bytes: UnsafeBufferPointer<UInt8>) throws(PhoneNumberError) -> PhoneNumber {
        var digits: [UInt8] = []
        digits.reserveCapacity(18)
        var plus = false
        for byte in bytes {
            switch byte {
            case 48...57:
                guard digits.count < 18 else { throw .tooLong }
                digits.append(byte)
            case UInt8(ascii: "+") where digits.isEmpty && !plus:
                plus = true
            case UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "/"), 0x09:
                continue
            default:
                throw .letters
            }
        }
        guard !digits.isEmpty else { throw .empty }
        if plus {
            return try Self.international(digits[...])
        } else if self.callingCode == 1, digits.starts(with: [48, 49, 49]) {  // 011
            return try Self.international(digits.dropFirst(3))
        } else if self.callingCode != 1, digits.starts(with: [48, 48]) {  // 00
            return try Self.international(digits.dropFirst(2))
        }
        return try self.national(digits[...])
    }

    /// A number written without its country code, in the default country.
    func national(_ digits: ArraySlice<UInt8>) throws(PhoneNumberError) -> PhoneNumber {
        var national = digits
        guard national.count >= (self.nationalLengths.min() ?? 0) else { throw .tooShort }
        if self.callingCode == 1 {
            if national.count == 11, national.first == 49 { national = national.dropFirst() }
        } else if let trunk = self.trunkPrefix, national.starts(with: trunk), self.nationalLengths.contains(national.count - trunk.count) {
            national = national.dropFirst(trunk.count)
        }
        let code = Array(String(self.callingCode).utf8)
        return try Self.international((code + national)[...])
    }

    /// Digits that start with a country calling code.
    static func international(_ digits: ArraySlice<UInt8>) throws(PhoneNumberError) -> PhoneNumber {
        guard digits.count <= 15 else { throw .tooLong }
        guard digits.count >= 7 else { throw .tooShort }
        var code = 0
        for length in 1...3 {
            code = code * 10 + Int(digits[digits.startIndex + length - 1] - 48)
            guard let lengths = CountryCallingCodes.lengthsByCode[code] else { continue }
            let national = digits.dropFirst(length)
            if code == 1 { return try Self.nanp(national, all: digits) }
            guard lengths.contains(national.count) else { throw .badLength }
            return PhoneNumber(digits: digits)
        }
        throw .unknownCountry
    }

    /// +1 numbers: ten digits, an area code in service, a dialable exchange.
    static func nanp(_ national: ArraySlice<UInt8>, all: ArraySlice<UInt8>) throws(PhoneNumberError) -> PhoneNumber {
        guard national.count == 10 else { throw .badLength }
        let start = national.startIndex
        func d(_ offset: Int) -> Int { Int(national[start + offset] - 48) }
        let area = d(0) * 100 + d(1) * 10 + d(2)
        guard NANPTimeZones.joined[area] != nil else { throw .nanpAreaCode }
        guard d(3) >= 2, !(d(4) == 1 && d(5) == 1) else { throw .nanpExchange }
        return PhoneNumber(digits: all)
    }
}

/// Where a callee is: the IANA zones their number may be in. Several when an area code spans
/// zones; calls go out only when the window is open in all of them.
public enum CalleeTimeZones {
    /// The NANP area code's zones, or nil when the number is not NANP or the code unknown.
    public static func forNANP(_ number: PhoneNumber) -> [String]? {
        number.nanpAreaCode.flatMap { NANPTimeZones.byAreaCode[$0] }
    }
}

extension NANPTimeZones {
    /// Area code → its zones as stored (`|`-separated), indexed by the code: one lookup per lead.
    static let joined: [String?] = (0..<1000).map { code in byAreaCode[code]?.joined(separator: "|") }
}
