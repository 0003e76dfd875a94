import Foundation

/// Phone-friendly text for a synthesiser: prices, percentages, times, phone numbers and
/// plain numbers become words; markdown and symbols a voice would spell out are dropped.
public enum SpokenText {
    /// The patterns, built once: a regex literal is parsed each time it is evaluated.
    private enum Pattern {
        nonisolated(unsafe) static let markdown = /[*_`#]+/
        nonisolated(unsafe) static let bullet = /(?m)^\s*[-•]\s+/
        nonisolated(unsafe) static let ampersand = /\s*&\s*/
        nonisolated(unsafe) static let forExample = /\be\.g\.\s*/
        nonisolated(unsafe) static let thatIs = /\bi\.e\.\s*/
        nonisolated(unsafe) static let phone = /(?:\+?1[-. ])?\(?(\d{3})\)?[-. ](\d{3})[-. ](\d{4})\b/
        nonisolated(unsafe) static let price = /\$(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?(?:\s*\/\s*(month|mo|year|yr|week|hour|hr))?/
        nonisolated(unsafe) static let percent = /(\d+(?:\.\d+)?)\s?%/
        nonisolated(unsafe) static let clockTime = /\b(\d{1,2}):(\d{2})\s*([aApP])\.?\s?[mM]\.?(?=\W|$)/
        nonisolated(unsafe) static let hourTime = /\b(\d{1,2})\s*([aApP])\.?\s?[mM]\.?(?=\W|$)/
        nonisolated(unsafe) static let twentyFourHour = /\b(\d{1,2}):(\d{2})\b/
        nonisolated(unsafe) static let ordinal = /\b(\d+)(st|nd|rd|th)\b/
        nonisolated(unsafe) static let number = /\b\d{1,3}(?:,\d{3})+\b|\b\d+(?:\.\d+)?\b/
        nonisolated(unsafe) static let spaces = /\s{2,}/
    }

    public static func normalize(_ text: String) -> String {
        // Most lines have nothing to rewrite.
        let rewritable = text.contains { $0.isNumber || $0.isNewline || "*_`#•&$%".contains($0) }
        guard rewritable || text.hasPrefix("-") || text.contains("  ") || text.contains("e.g.") || text.contains("i.e.") else {
            return text.trimmingSpaces()
        }
        var text = text
        // Markdown emphasis, headings, code and bullets.
        text = text.replacing(Pattern.markdown, with: "")
        text = text.replacing(Pattern.bullet, with: "")
        text = text.replacing(Pattern.ampersand, with: " and ")
        text = text.replacing(Pattern.forExample, with: "for example ")
        text = text.replacing(Pattern.thatIs, with: "that is ")
        // Phone numbers: digit by digit, grouped.
        text = text.replacing(Pattern.phone) { match in
            [match.output.1, match.output.2, match.output.3].map { group in group.map { Self.digitNames[Int(String($0))!] }.joined(separator: " ") }
                .joined(separator: ", ")
        }
        // Prices: $1,299.99 / $29 / $29/month.
        text = text.replacing(Pattern.price) { match in
            let dollars = Int(match.output.1.replacingOccurrences(of: ",", with: "")) ?? 0
            var spoken = "\(Self.words(dollars)) \(dollars == 1 ? "dollar" : "dollars")"
            if let cents = match.output.2.flatMap({ Int($0) }), cents > 0 {
                spoken += " and \(Self.words(cents)) \(cents == 1 ? "cent" : "cents")"
            }
            if let period = match.output.3 {
                let names = ["mo": "month", "yr": "year", "hr": "hour"]
                spoken += " per \(names[String(period)] ?? String(period))"
            }
            return spoken
        }
        // Percentages.
        text = text.replacing(Pattern.percent) { match in "\(Self.decimalWords(String(match.output.1))) percent" }
        // Times: 3:30 pm, 3pm, 15:00.
        text = text.replacing(Pattern.clockTime) { match in
            Self.time(hour: Int(match.output.1)!, minute: Int(match.output.2)!, suffix: String(match.output.3))
        }
        text = text.replacing(Pattern.hourTime) { match in
            Self.time(hour: Int(match.output.1)!, minute: 0, suffix: String(match.output.2))
        }
        text = text.replacing(Pattern.twentyFourHour) { match in
            Self.time(hour: Int(match.output.1)!, minute: Int(match.output.2)!, suffix: nil)
        }
        // Ordinals and plain numbers.
        text = text.replacing(Pattern.ordinal) { match in Self.ordinal(Int(match.output.1) ?? 0) }
        text = text.replacing(Pattern.number) { match in
            Self.decimalWords(String(match.output).replacingOccurrences(of: ",", with: ""))
        }
        return text.replacing(Pattern.spaces, with: " ").trimmingSpaces()
    }

    static let digitNames = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    static let teens = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
    static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

    /// An integer in words, e.g. 1299 → "one thousand two hundred ninety-nine".
    public static func words(_ number: Int) -> String {
        if number < 0 { return "minus " + words(-number) }
        if number < 10 { return digitNames[number] }
        if number < 20 { return teens[number - 10] }
        if number < 100 { return tens[number / 10] + (number % 10 == 0 ? "" : "-" + digitNames[number % 10]) }
        if number < 1_000 { return digitNames[number / 100] + " hundred" + (number % 100 == 0 ? "" : " " + words(number % 100)) }
        for (size, name) in [(1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand")] where number >= size {
            return words(number / size) + " " + name + (number % size == 0 ? "" : " " + words(number % size))
        }
        return String(number)
    }

    static func decimalWords(_ text: String) -> String {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard let whole = Int(parts[0]) else { return text }
        guard parts.count == 2 else { return words(whole) }
        return words(whole) + " point " + parts[1].map { digitNames[Int(String($0)) ?? 0] }.joined(separator: " ")
    }

    static func ordinal(_ number: Int) -> String {
        let irregular = [1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"]
        if let word = irregular[number] { return word }
        if number > 20 && number < 100 && number % 10 != 0, let last = irregular[number % 10] ?? Optional(words(number % 10) + "th") {
            return tens[number / 10] + "-" + last
        }
        let cardinal = words(number)
        return cardinal.hasSuffix("y") ? String(cardinal.dropLast()) + "ieth" : cardinal + "th"
    }

    static func time(hour: Int, minute: Int, suffix: String?) -> String {
        var spoken = words(hour % 12 == 0 ? 12 : hour % 12)
        if minute == 0 {
            if suffix == nil && hour <= 12 { spoken += " o'clock" }
        } else {
            spoken += minute < 10 ? " oh " + words(minute) : " " + words(minute)
        }
        if let suffix {
            spoken += suffix.lowercased() == "a" ? " a m" : " p m"
        } else if hour > 12 {
            spoken += " p m"  // a 24-hour time
        }
        return spoken
    }
}
