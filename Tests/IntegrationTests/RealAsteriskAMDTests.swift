import CampaignCore
import CampaignStore
import Foundation
import GRDB
import Testing

@testable import CampaignApp

/// The README's own dialplan on a real Asterisk: AMD() in front of AudioSocket. A person who
/// says "Hello?" is talked to and never counted abandoned (AMD's ~2 s of listening is before
/// the greeting ends, not after); an answering machine is `voicemail`; AMD's verdict and cause
/// are stored with the greeting's end.
@Suite(.serialized, .timeLimit(.minutes(4))) struct RealAsteriskAMDTests {
    /// As README.md gives it.
    static let readmeDialplan = """
        exten => s,1,AMD()
         same => n,UserEvent(AIAmd,Status: ${AMDSTATUS},Cause: ${AMDCAUSE})
         same => n,GotoIf($["${AMDSTATUS}" = "MACHINE"]?vm)
         same => n,AudioSocket(${CEX_CALL_ID},ENGINE)
         same => n,Hangup()
         same => n(vm),Hangup(16)
        """

    @Test func aPersonBehindAMDIsTalkedToAndNotAbandonedAndAMachineIsVoicemail() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cex-amd-lines-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func line(_ name: String, _ text: String) async throws -> String { try await RealAsterisk.render(text, as: name, in: folder) }
        let hello = try await line("hello", "Hello?")
        let yes = try await line("yes", "Yes, I have a minute.")
        let okay = try await line("okay", "Okay, go on.")
        let book = try await line("book", "Yes please, book it.")
        let greeting = try await line(
            "greeting", "Hi, you have reached the Miller family. We cannot take your call right now. Please leave a message after the tone and we will call you back.")
        let turn = ["WaitForNoise(200,1,30)", "WaitForSilence(1200,1,30)"]
        let setup = try await RealAsteriskFaultTests.Setup(
            callees: [
                // A second of silence, then "Hello?": AMD decides about 2.3 s after the answer.
                (digits: "12125550301", steps: ["Wait(1)", "Playback(\(hello))"] + turn + ["Playback(\(yes))"] + turn + ["Playback(\(okay))"] + turn + ["Playback(\(book))", "Wait(15)"]),
                (digits: "12125550302", steps: ["Playback(\(greeting))", "Wait(10)"]),
            ],
            answered: Self.readmeDialplan)
        let summary = try await setup.dial()
        let rows = try DatabaseQueue(path: setup.store.path).read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT phone, outcome, abandoned, amd_status, amd_cause, answered_at, greeting_end_at, first_audio_at
                    FROM attempt ORDER BY phone
                    """)
        }
        let paused = try setup.store.pauseReason(campaignID: setup.session.campaignID)
        let channels = try setup.asterisk.activeChannels()
        await setup.tearDown()

        #expect(paused == nil, "the campaign paused itself: \(paused ?? "")")
        #expect(summary.ending == .nothingDue(next: summary.ending.nextDue) || summary.ending == .finished, "\(summary)")
        #expect(rows.count == 2)
        let person = try #require(rows.first)
        #expect(person["outcome"] as String? == "interested", "\(person)")
        #expect(person["abandoned"] as Bool? == false, "\(person)")
        #expect(person["amd_status"] as String? == "HUMAN", "\(person)")
        #expect((person["amd_cause"] as String?)?.hasPrefix("HUMAN-") == true, "\(person)")
        let answered = try #require(person["answered_at"] as Date?)
        let greetingEnd = try #require(person["greeting_end_at"] as Date?)
        let firstAudio = try #require(person["first_audio_at"] as Date?)
        #expect(greetingEnd > answered && greetingEnd < firstAudio, "\(person)")
        #expect(firstAudio.timeIntervalSince(greetingEnd) < AttemptOutcome.abandonLimit, "\(person)")
        // Counted from the answer, as it used to be, the same call would have been abandoned.
        #expect(firstAudio.timeIntervalSince(answered) > AttemptOutcome.abandonLimit, "\(person)")
        let machine = try #require(rows.last)
        #expect(machine["outcome"] as String? == "voicemail", "\(machine)")
        #expect(machine["amd_status"] as String? == "MACHINE", "\(machine)")
        #expect(machine["amd_cause"] as String? != nil, "\(machine)")
        #expect(channels == 0)
    }
}

extension CampaignRunner.Ending {
    /// The next due time of `.nothingDue`, for comparisons.
    var nextDue: Date? {
        if case .nothingDue(let next) = self { return next }
        return nil
    }
}
