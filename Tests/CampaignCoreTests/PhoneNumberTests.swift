import Testing

@testable import CampaignCore

@Suite struct PhoneNumberTests {
    let us = try! PhoneNumberParser(defaultRegion: "US")
    let gb = try! PhoneNumberParser(defaultRegion: "GB")

    @Test(arguments: [
        ("(212) 555-0101", "+12125550101"),
        ("212.555.0101", "+12125550101"),
        ("1-212-555-0101", "+12125550101"),
        ("+1 212 555 0101", "+12125550101"),
        ("011 44 20 7946 0958", "+442079460958"),
    ])
    func numbersAsPeopleWriteThemBecomeE164(input: String, expected: String) throws {
        #expect(try self.us.parse(input).e164 == expected)
    }

    @Test func theDefaultCountrysTrunkPrefixIsDropped() throws {
        #expect(try self.gb.parse("020 7946 0958").e164 == "+442079460958")
        #expect(try self.gb.parse("00 1 212 555 0101").e164 == "+12125550101")
        #expect(try self.gb.parse("+1 212 555 0101").e164 == "+12125550101")
    }

    @Test(arguments: [
        ("", PhoneNumberError.empty),
        ("555-0101", .tooShort),
        ("+1 555 555 0101", .nanpAreaCode),
        ("212 155 0101", .nanpExchange),
        ("212 911 0101", .nanpExchange),
        ("call me maybe", .letters),
        ("212 555 0101 x12", .letters),
        ("+999 1234 5678", .unknownCountry),
        ("+1 212 555 01011", .badLength),
        ("+44 1234 567 890 123 45", .tooLong),
        // A trunk "(0)" inside an international number leaves one digit too many.
        ("+44 (0)20 7946 0958", .badLength),
    ])
    func invalidNumbersSayWhyWithoutRepeatingTheNumber(input: String, expected: PhoneNumberError) throws {
        #expect(throws: expected) { try self.us.parse(input) }
        let digits = input.filter(\.isNumber)
        if digits.count >= 4 { #expect(!expected.description.contains(digits)) }
    }

    @Test func nanpNumbersFindTheirZonesAndAreaCodesSpanningZonesListThemAll() throws {
        #expect(CalleeTimeZones.forNANP(try self.us.parse("212 555 0101")) == ["America/New_York"])
        #expect(CalleeTimeZones.forNANP(try self.us.parse("808 555 0101")) == ["Pacific/Honolulu"])
        #expect(CalleeTimeZones.forNANP(try self.us.parse("208 555 0101"))?.count ?? 0 > 1)
        #expect(CalleeTimeZones.forNANP(try self.gb.parse("020 7946 0958")) == nil)
    }

    @Test func anUnknownDefaultRegionIsRefused() {
        #expect(throws: PhoneNumberError.self) { try PhoneNumberParser(defaultRegion: "XX") }
    }
}
