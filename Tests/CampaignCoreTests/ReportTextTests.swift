import Foundation
import Testing

@testable import CampaignCore

@Suite struct ReportTextTests {
    @Test func datesMatchFoundationsISO8601Formatter() {
        let formatter = ISO8601DateFormatter()
        var generator = SystemRandomNumberGenerator()
        let fixed: [TimeInterval] = [0, -1, 951_782_400 /* 2000-02-29 */, 4_107_542_399 /* 2100-02-28T23:59:59 */, 1_784_055_600.999, -86_401]
        let random = (0..<2_000).map { _ in TimeInterval(Int64.random(in: -2_000_000_000...5_000_000_000, using: &generator)) }
        for seconds in fixed + random {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(ReportText.iso8601(date) == formatter.string(from: date), "\(seconds)")
        }
    }

    @Test func decimalsRoundHalfAwayFromZeroWithFixedPlaces() {
        #expect(ReportText.decimal(36.84, places: 1) == "36.8")
        #expect(ReportText.decimal(41.25, places: 1) == "41.3")
        #expect(ReportText.decimal(-0.456, places: 2) == "-0.46")
        #expect(ReportText.decimal(0, places: 2) == "0.00")
        #expect(ReportText.decimal(-0.001, places: 2) == "0.00")
        #expect(ReportText.decimal(0.05, places: 2) == "0.05")
        #expect(ReportText.decimal(7, places: 0) == "7")
    }
}
