import Foundation
import Testing

@testable import CampaignCore

@Suite struct LeadImportTests {
    func validate(_ csv: String, required: Set<String> = ["first_name"], dnc: Set<String> = [], existing: Set<String> = [], defaultZone: String? = nil)
        throws -> [LeadValidator.Result]
    {
        var reader = CSVReader(bytes: Array(csv.utf8))
        let header = try #require(try reader.next())
        let columns = try LeadColumns(header: header.strings(in: reader.bytes))
        var validator = try LeadValidator(
            columns: columns, parser: try PhoneNumberParser(defaultRegion: "US"), defaultTimeZone: defaultZone, requiredVariables: required,
            doNotCall: dnc, existing: existing)
        var results: [LeadValidator.Result] = []
        while let record = try reader.next() { results.append(validator.check(record, in: reader.bytes)) }
        return results
    }

    func rejection(_ result: LeadValidator.Result) -> RejectedLead? {
        if case .rejected(let rejected) = result { return rejected }
        return nil
    }

    func lead(_ result: LeadValidator.Result) -> ImportedLead? {
        if case .lead(let lead) = result { return lead }
        return nil
    }

    @Test func headerAliasesAreFoundWhateverTheirCaseAndSpacing() throws {
        let columns = try LeadColumns(header: ["Mobile", "Full Name", " Time Zone ", "City"])
        #expect(columns.phone == 0 && columns.fullName == 1 && columns.timeZone == 2)
        #expect(columns.names == ["mobile", "full_name", "time_zone", "city"])
        let fields = columns.fields(of: ["+12125550101", "Ana María López", "America/New_York", "Springfield"])
        #expect(fields["first_name"] == "Ana")
        #expect(fields["last_name"] == "María López")
        #expect(fields["city"] == "Springfield")
        #expect(fields["phone"] == "+12125550101")
    }

    @Test func aFileWithoutAPhoneColumnOrWithTwinColumnsFailsAtLineOne() {
        #expect(throws: LeadFileError.self) { try LeadColumns(header: ["name", "email"]) }
        #expect(throws: LeadFileError(line: 1, message: "columns 1 and 2 have the same name (phone)")) { try LeadColumns(header: ["Phone", "phone "]) }
        #expect(throws: LeadFileError.self) { try LeadColumns(header: ["tel"], overrides: ["phone": "Cell"]) }
    }

    @Test func theCampaignCanNameAColumnTheAliasesDoNotKnow() throws {
        let columns = try LeadColumns(header: ["Kontakt", "Rufnummer"], overrides: ["phone": "Rufnummer", "name": "Kontakt"])
        #expect(columns.phone == 1 && columns.fullName == 0)
    }

    @Test func eachRowIsCheckedAndRejectsSayWhichFieldAndWhy() throws {
        let results = try self.validate(
            """
            phone,first_name,city,timezone
            (212) 555-0101,Ana,Springfield,
            212 555 0102,,Shelbyville,
            555-0103,Bo,Ogdenville,
            +1 212 555 0101,Ana,Springfield,
            +44 20 7946 0958,Cy,London,
            +44 20 7946 0959,Di,London,Europe/London
            312 555 0104,Ed,Chicago,Mars/Olympus
            312 555 0105,Flo,Chicago,extra,field
            """)
        #expect(self.lead(results[0])?.phone.e164 == "+12125550101")
        #expect(self.lead(results[0])?.timeZones == "America/New_York")
        let bytes = Array("phone,first_name,city,timezone\n(212) 555-0101,Ana,Springfield,".utf8)
        #expect(self.lead(results[0]).map { String(decoding: bytes[$0.record], as: UTF8.self) } == "(212) 555-0101,Ana,Springfield,")
        #expect(self.rejection(results[1]) == RejectedLead(line: 3, field: "first_name", reason: "is empty, and the template needs {{first_name}}"))
        #expect(self.rejection(results[2])?.field == "phone")
        #expect(self.rejection(results[3]) == RejectedLead(line: 5, field: "phone", reason: "same number as line 2"))
        #expect(self.rejection(results[4])?.reason.hasPrefix("no timezone") == true)
        #expect(self.lead(results[5])?.timeZones == "Europe/London")
        #expect(self.rejection(results[6])?.field == "timezone")
        #expect(self.rejection(results[7])?.reason == "has 5 fields; the header has 4")
    }

    @Test func theCampaignDefaultZoneCoversNumbersWithoutOne() throws {
        let results = try self.validate("phone,first_name\n+44 20 7946 0958,Cy\n", defaultZone: "Europe/London")
        #expect(self.lead(results[0])?.timeZones == "Europe/London")
    }

    @Test func numbersOnTheDoNotCallListOrAlreadyInTheCampaignAreNotImported() throws {
        let results = try self.validate("phone,first_name\n2125550101,Ana\n2125550102,Bo\n", dnc: ["+12125550101"], existing: ["+12125550102"])
        #expect(self.rejection(results[0])?.reason == "on the do-not-call list")
        #expect(results[1] == .unchanged)
    }

    @Test func aTemplateVariableNoColumnGivesFailsTheWholeFile() {
        #expect(throws: LeadFileError(line: 1, message: "the template uses {{city}}, and no column gives it")) {
            try self.validate("phone,first_name\n2125550101,Ana\n", required: ["first_name", "city"])
        }
    }

    @Test func aStoredRecordReadsBackIntoItsFields() {
        #expect(LeadRecord.values("\"Smith, John\",\"say \"\"hi\"\"\",+12125550101") == ["Smith, John", "say \"hi\"", "+12125550101"])
    }

    @Test func namesReadFromAStoredRecordMatchNamesFromItsFields() throws {
        let columns = try LeadColumns(header: ["phone", "full_name", "city"])
        let records = [
            "+12125550101,\"Smith, John\",Boston", "+12125550101,\u{A0}José Núñez\u{A0},Boston", "+12125550101, \tAna ,Boston",
            "+12125550101,\"Ana \"\"Bo\"\" Lee\",x", "+12125550101,,Boston", "+12125550101", "",
        ]
        for record in records {
            let fromRecord = columns.names(ofRecord: record)
            let fromFields = columns.names(of: LeadRecord.values(record))
            #expect(fromRecord.full == fromFields.full && fromRecord.first == fromFields.first && fromRecord.last == fromFields.last, "\(record)")
        }
        #expect(columns.names(ofRecord: records[1]).full == "José Núñez")
        #expect(columns.names(ofRecord: records[2]).first == "Ana")
        #expect(columns.names(ofRecord: records[3]).full == "Ana \"Bo\" Lee")
    }
}
