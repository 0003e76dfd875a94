import Foundation

/// Reads a callback time from what the callee said ("tomorrow at three thirty", "next
/// monday morning", "in two hours", "this evening"), resolved in the callee's timezone.
public enum CallbackTime {
    static let numbers: [String: Int] = [
        "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
        "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "a": 1, "an": 1,
    ]
    static let weekdays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]

    /// The time meant, or nil when the words name none.
    public static func resolve(_ text: String, now: Date, timeZone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let words = text.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "'") }.map(String.init)
        func number(_ word: String) -> Int? { Int(word) ?? self.numbers[word] }

        // "in two hours", "in thirty minutes", "in an hour"
        if let index = words.firstIndex(of: "in"), index + 2 < words.count, let amount = number(words[index + 1]) {
            let unit = words[index + 2]
            if unit.hasPrefix("hour") { return now.addingTimeInterval(Double(amount) * 3_600) }
            if unit.hasPrefix("minute") { return now.addingTimeInterval(Double(amount) * 60) }
        }

        var day = calendar.startOfDay(for: now)
        var named = false
        if words.contains("tomorrow") {
            day = calendar.date(byAdding: .day, value: 1, to: day)!
            named = true
        } else if let weekday = words.compactMap({ self.weekdays.firstIndex(of: $0) }).first {
            let today = calendar.component(.weekday, from: now) - 1
            var ahead = (weekday - today + 7) % 7
            if ahead == 0 { ahead = 7 }
            day = calendar.date(byAdding: .day, value: ahead, to: day)!
            named = true
        } else if words.contains("next") && words.contains("week") {
            day = calendar.date(byAdding: .day, value: 7, to: day)!
            named = true
        }

        // "at three thirty p m", "at 3", "at ten o'clock"
        var hour: Int?
        var minute = 0
        if let index = words.firstIndex(where: { $0 == "at" || $0 == "around" || $0 == "about" }), index + 1 < words.count, let value = number(words[index + 1]), value <= 12 {
            hour = value
            if index + 2 < words.count, let minutes = number(words[index + 2]), minutes >= 10, minutes < 60 {
                minute = minutes
                if index + 3 < words.count, let more = number(words[index + 3]), more < 10, minutes >= 20 { minute += more }
            }
            let tail = words[(index + 1)...]
            let morning = tail.contains("am") || (tail.contains("a") && tail.contains("m") && !tail.contains("p")) || words.contains("morning")
            let evening = tail.contains("pm") || tail.contains("p") || words.contains("afternoon") || words.contains("evening") || words.contains("tonight")
            if var chosen = hour {
                if evening && chosen < 12 { chosen += 12 } else if !morning && !evening && chosen < 8 { chosen += 12 }
                if morning && chosen == 12 { chosen = 0 }
                hour = chosen
            }
        } else if words.contains("morning") {
            hour = 10
        } else if words.contains("afternoon") {
            hour = 14
        } else if words.contains("evening") || words.contains("tonight") {
            hour = 18
        } else if words.contains("later") && !named {
            return now.addingTimeInterval(2 * 3_600)
        }
        guard named || hour != nil else { return nil }
        var result = calendar.date(bySettingHour: hour ?? 10, minute: minute, second: 0, of: day)!
        if !named && result <= now { result = calendar.date(byAdding: .day, value: 1, to: result)! }
        return result
    }
}
