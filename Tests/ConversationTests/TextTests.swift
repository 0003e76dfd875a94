import Foundation
import Testing
import TestSupport

@testable import Conversation

@Suite struct SpeechChunkerTests {
    static let replies = [
        "Sure, I can help with that. The assessment is free, and it takes about 45 minutes. Would Tuesday work?",
        "Great question, Dr. Smith. It costs $29.99/month, which is 30% less than most plans! Shall I book it?",
        "Thanks so much for your time today, I really appreciate it. Goodbye.",
        "Yes. We cover Springfield, Shelbyville and Capital City: all three.",
        "Okay",
    ]

    /// Streams each reply in 3-character pieces, as an LLM would, and lists the chunks.
    @Test func cutsRepliesClauseFirstThenBySentence() {
        var lines: [String] = []
        for reply in Self.replies {
            var chunker = SpeechChunker()
            var chunks: [String] = []
            var index = reply.startIndex
            while index < reply.endIndex {
                let end = reply.index(index, offsetBy: 3, limitedBy: reply.endIndex) ?? reply.endIndex
                chunks += chunker.append(String(reply[index..<end]))
                index = end
            }
            chunks += chunker.finish()
            lines.append("> \(reply)")
            lines += chunks.map { "  [\($0)] → \(SpokenText.normalize($0))" }
        }
        let mismatch = goldenMismatch(lines.joined(separator: "\n") + "\n", name: "chunker.txt")
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test(arguments: [
        ("It's $1,299.99 in total.", "It's one thousand two hundred ninety-nine dollars and ninety-nine cents in total."),
        ("Save 30% today", "Save thirty percent today"),
        ("Call at 3:30 pm or 10am", "Call at three thirty p m or ten a m"),
        ("See you at 15:05", "See you at three oh five p m"),
        ("Our number is 555-123-4567.", "Our number is five five five, one two three, four five six seven."),
        ("The **1st** visit & the 22nd", "The first visit and the twenty-second"),
        ("About 2.5 hours", "About two point five hours"),
    ])
    func normalisesForThePhone(input: String, expected: String) {
        #expect(SpokenText.normalize(input) == expected)
    }
}

@Suite struct CallbackTimeTests {
    // Wednesday 2026-11-25 14:00 in New York.
    static let zone = TimeZone(identifier: "America/New_York")!
    static let now = ISO8601DateFormatter().date(from: "2026-11-25T19:00:00Z")!

    static func local(_ text: String) -> String? {
        guard let date = CallbackTime.resolve(text, now: now, timeZone: zone) else { return nil }
        let formatter = DateFormatter()
        formatter.timeZone = zone
        formatter.dateFormat = "EEE yyyy-MM-dd HH:mm"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: date)
    }

    @Test func readsTheTimesCalleesSay() {
        #expect(Self.local("call me tomorrow at three thirty") == "Thu 2026-11-26 15:30")
        #expect(Self.local("tomorrow morning") == "Thu 2026-11-26 10:00")
        #expect(Self.local("next monday at 9 am") == "Mon 2026-11-30 09:00")
        #expect(Self.local("this evening") == "Wed 2026-11-25 18:00")
        #expect(Self.local("in two hours") == "Wed 2026-11-25 16:00")
        #expect(Self.local("at eleven") == "Thu 2026-11-26 11:00")
        #expect(Self.local("some other time") == nil)
    }
}
