import Foundation

/// When calls may go out, in the callee's local time: days of the week and hours.
///
/// The legal window (08:00–21:00 local, 47 CFR 64.1200(c)(1)) is the outer bound; a campaign
/// can only narrow it. A callee whose number may be in several zones is called only when the
/// window is open in every one of them.
public struct CallingWindow: Sendable, Hashable, CustomStringConvertible {
    public enum Day: Int, Sendable, Hashable, CaseIterable, Comparable {
        // Calendar's weekday numbering.
        case sunday = 1, monday, tuesday, wednesday, thursday, friday, saturday

        public static func < (lhs: Day, rhs: Day) -> Bool { lhs.rawValue < rhs.rawValue }

        public var name: String { ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][self.rawValue - 1] }

        public init?(name: String) {
            guard let day = Day.allCases.first(where: { $0.name == name.lowercased().prefix(3) }) else { return nil }
            self = day
        }
    }

    public var days: Set<Day>
    /// Minutes after local midnight: the first minute calls may start.
    public var start: Int
    /// Minutes after local midnight: calls stop starting before this.
    public var end: Int

    public init(days: Set<Day> = Set(Day.allCases), start: Int, end: Int) {
        self.days = days
        self.start = start
        self.end = end
    }

    /// 08:00–21:00 every day.
    public static let legal = CallingWindow(start: 8 * 60, end: 21 * 60)

    /// Whether this window lies inside `outer`.
    public func isInside(_ outer: CallingWindow) -> Bool {
        self.start >= outer.start && self.end <= outer.end && self.days.isSubset(of: outer.days) && self.start < self.end
    }

    public func isOpen(at date: Date, in zones: [TimeZone]) -> Bool {
        !zones.isEmpty && zones.allSatisfy { self.isOpen(at: date, in: $0) }
    }

    public func isOpen(at date: Date, in zone: TimeZone) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday.flatMap(Day.init(rawValue:)), self.days.contains(weekday) else { return false }
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return minute >= self.start && minute < self.end
    }

    /// The first moment at or after `date` when the window is open in every zone; nil when
    /// it never opens in the next two weeks (no days, or zones whose windows never overlap).
    public func nextOpen(atOrAfter date: Date, in zones: [TimeZone]) -> Date? {
        if self.isOpen(at: date, in: zones) { return date }
        var candidates: [Date] = []
        for zone in zones {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let today = calendar.startOfDay(for: date)
            for offset in 0...14 {
                guard let day = calendar.date(byAdding: .day, value: offset, to: today),
                    let opening = calendar.date(bySettingHour: self.start / 60, minute: self.start % 60, second: 0, of: day),
                    opening > date
                else { continue }
                candidates.append(opening)
            }
        }
        return candidates.sorted().first { self.isOpen(at: $0, in: zones) }
    }

    /// "08:00" → 480.
    public static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]), (0...24).contains(hour), (0..<60).contains(minute),
            hour * 60 + minute <= 24 * 60
        else { return nil }
        return hour * 60 + minute
    }

    /// "mon-fri 09:00-20:00", days in week order.
    public var description: String {
        let days = self.days.count == 7 ? "every day" : self.days.sorted().map(\.name).joined(separator: ",")
        return "\(days) \(Self.clock(self.start))-\(Self.clock(self.end))"
    }

    public static func clock(_ minutes: Int) -> String {
        String(format: "%02d:%02d", minutes / 60, minutes % 60)
    }
}
