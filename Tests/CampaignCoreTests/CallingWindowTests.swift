import Foundation
import Testing

@testable import CampaignCore

@Suite struct CallingWindowTests {
    let newYork = TimeZone(identifier: "America/New_York")!
    let honolulu = TimeZone(identifier: "Pacific/Honolulu")!

    func date(_ text: String) -> Date {
        try! Date(text, strategy: .iso8601)
    }

    @Test func theWindowIsTheCalleesLocalTimeNotTheServersOrUTC() {
        let window = CallingWindow.legal
        // 12:59 UTC is 07:59 in New York in winter (EST), 13:00 is 08:00.
        #expect(!window.isOpen(at: self.date("2026-01-15T12:59:00Z"), in: self.newYork))
        #expect(window.isOpen(at: self.date("2026-01-15T13:00:00Z"), in: self.newYork))
        // In summer (EDT) 08:00 is 12:00 UTC.
        #expect(window.isOpen(at: self.date("2026-07-15T12:00:00Z"), in: self.newYork))
        // 21:00 is closed: calls start before 21:00.
        #expect(!window.isOpen(at: self.date("2026-07-16T01:00:00Z"), in: self.newYork))
        #expect(window.isOpen(at: self.date("2026-07-16T00:59:00Z"), in: self.newYork))
    }

    @Test func aNumberThatMayBeInSeveralZonesIsCalledOnlyWhenAllAreOpen() {
        let window = CallingWindow.legal
        // 14:00 UTC: 10:00 in New York (EDT), 04:00 in Honolulu.
        let time = self.date("2026-07-15T14:00:00Z")
        #expect(window.isOpen(at: time, in: [self.newYork]))
        #expect(!window.isOpen(at: time, in: [self.newYork, self.honolulu]))
        // Both open at 08:00 Honolulu = 18:00 UTC (14:00 New York).
        #expect(window.nextOpen(atOrAfter: time, in: [self.newYork, self.honolulu]) == self.date("2026-07-15T18:00:00Z"))
    }

    @Test func nextOpenSkipsDaysTheCampaignDoesNotCall() {
        let weekdays = CallingWindow(days: [.monday, .tuesday, .wednesday, .thursday, .friday], start: 9 * 60, end: 17 * 60)
        // Friday 2026-07-17 18:00 New York → Monday 09:00 (13:00 UTC).
        let friday = self.date("2026-07-17T22:00:00Z")
        #expect(weekdays.nextOpen(atOrAfter: friday, in: [self.newYork]) == self.date("2026-07-20T13:00:00Z"))
        #expect(CallingWindow(days: [], start: 540, end: 600).nextOpen(atOrAfter: friday, in: [self.newYork]) == nil)
    }

    @Test func aCampaignWindowMayOnlyNarrowTheLegalOne() {
        #expect(CallingWindow(start: 9 * 60, end: 20 * 60).isInside(.legal))
        #expect(!CallingWindow(start: 7 * 60, end: 20 * 60).isInside(.legal))
        #expect(!CallingWindow(start: 9 * 60, end: 22 * 60).isInside(.legal))
    }

    @Test func clockTextParses() {
        #expect(CallingWindow.minutes("08:30") == 510)
        #expect(CallingWindow.minutes("8") == nil)
        #expect(CallingWindow.minutes("25:00") == nil)
        #expect(CallingWindow.clock(510) == "08:30")
    }
}
