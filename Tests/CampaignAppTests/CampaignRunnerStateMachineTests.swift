import CampaignCore
import Foundation
import Testing

@testable import CampaignApp
@testable import CampaignStore

/// The dial loop's rules on an injected clock: gaps, stalls, restarts and stop requests, each
/// ending within the deadline that covers it.
@Suite struct CampaignRunnerStateMachineTests {
    typealias Machine = CampaignRunner.StateMachine
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: TimeInterval) -> Date { self.start.addingTimeInterval(seconds) }

    func attempt(_ n: Int, answeredAt: Date? = nil) throws -> Attempt {
        Attempt(
            id: UUID(), campaignID: 1, leadID: Int64(n), number: 1, phone: try PhoneNumberParser(defaultRegion: "US").parse("+1212555010\(n)"),
            channel: "PJSIP/+1212555010\(n)@trunk", queuedAt: self.start, originatedAt: self.start, answeredAt: answeredAt)
    }

    func machine(maxCalls: Int = 4) -> Machine {
        var configuration = Machine.Configuration(maxConcurrentCalls: maxCalls, callsPerSecond: 10)
        configuration.stopWhenIdle = true
        return Machine(configuration: configuration)
    }

    /// A machine connected to AMI with one answered call in conversation.
    func talking() throws -> (Machine, Attempt) {
        var machine = self.machine()
        _ = machine.connected(at: self.at(0))
        let attempt = try self.attempt(1)
        machine.dialled(attempt, at: self.at(0))
        _ = machine.event(.ringing, key: attempt.callID, at: self.at(1))
        _ = machine.event(.answered, key: attempt.callID, at: self.at(3))
        _ = machine.event(.originateResponse(reason: 4), key: attempt.callID, at: self.at(3))
        return (machine, attempt)
    }

    func settlements(_ actions: [Machine.Action]) -> [AttemptOutcome] {
        actions.compactMap { if case .settle(_, _, let settlement) = $0 { return settlement.outcome } else { return nil } }
    }

    func checked(_ actions: [Machine.Action]) -> Set<String>? {
        actions.lazy.compactMap { if case .listChannels(let keys) = $0 { return keys } else { return nil } }.first
    }

    func record(_ outcome: AttemptOutcome?, firstAudio: Date?) -> (report: EngineReport, finished: Bool) {
        (EngineReport(outcome: outcome, firstAudioAt: firstAudio, callbackAt: nil), true)
    }

    @Test func aCallThatEndsDuringAnAMIGapIsSettledFromTheEngineRecordOnReconnect() throws {
        var (machine, attempt) = try self.talking()
        machine.disconnected(at: self.at(10))
        // The call ends while AMI is down; nothing is heard of it.
        #expect(self.checked(machine.tick(at: self.at(20), engineFree: 4)) == nil)
        let checking = try #require(self.checked(machine.connected(at: self.at(30))))
        #expect(checking == [attempt.callID])
        let actions = machine.channelsListed(up: [], checked: checking, at: self.at(30.1))
        #expect(actions.contains(.readRecord(key: attempt.callID, attemptID: attempt.id)))
        let settled = machine.recordRead(attempt.callID, self.record(.interested, firstAudio: self.at(3.2)), at: self.at(30.1))
        #expect(self.settlements(settled) == [.interested])
        #expect(machine.live.isEmpty)
    }

    @Test func aPBXRestartMidCallIsLostNotNoConversation() throws {
        var (machine, attempt) = try self.talking()
        machine.disconnected(at: self.at(10))
        let checking = try #require(self.checked(machine.connected(at: self.at(25))))
        _ = machine.channelsListed(up: ["another-call"], checked: checking, at: self.at(25))
        // The engine saw the line go without a decision.
        let settled = machine.recordRead(attempt.callID, self.record(.hungUp, firstAudio: self.at(3.1)), at: self.at(25))
        #expect(self.settlements(settled) == [.lost])
        guard case .settle(_, _, let settlement)? = settled.first else { Issue.record("not settled"); return }
        #expect(settlement.abandoned == false)
    }

    @Test func aCallThatEndedUnheardOnAPBXThatKeptRunningKeepsTheEnginesOutcomeAndOneOnARestartedPBXIsLost() throws {
        for (after, expected) in [("2026-07-13 09:00:00", AttemptOutcome.hungUp), ("2026-07-13 18:00:05", .lost)] {
            var machine = self.machine()
            _ = machine.connected(at: self.at(0), pbx: "2026-07-13 09:00:00")
            let attempt = try self.attempt(1)
            machine.dialled(attempt, at: self.at(0))
            _ = machine.event(.answered, key: attempt.callID, at: self.at(1))
            _ = machine.event(.originateResponse(reason: 4), key: attempt.callID, at: self.at(1))
            machine.disconnected(at: self.at(10))
            let checking = try #require(self.checked(machine.connected(at: self.at(20), pbx: after)))
            _ = machine.channelsListed(up: [], checked: checking, at: self.at(20))
            let settled = machine.recordRead(attempt.callID, self.record(.hungUp, firstAudio: self.at(1.1)), at: self.at(20))
            #expect(self.settlements(settled) == [expected], "PBX started \(after)")
        }
    }

    @Test func aCallStillUpAfterTheGapIsFollowedToItsEnd() throws {
        var (machine, attempt) = try self.talking()
        machine.disconnected(at: self.at(10))
        let checking = try #require(self.checked(machine.connected(at: self.at(12))))
        #expect(machine.channelsListed(up: [attempt.callID + ";1"], checked: checking, at: self.at(12)).isEmpty)
        #expect(self.checked(machine.tick(at: self.at(20), engineFree: 4)) == nil, "an up channel is not looked for again at once")
        let actions = machine.event(.hangup(cause: 16, techCause: nil, ownLeg: true), key: attempt.callID, at: self.at(40))
        #expect(actions.contains(.readRecord(key: attempt.callID, attemptID: attempt.id)))
        let settled = machine.recordRead(attempt.callID, self.record(.notInterested, firstAudio: self.at(3.1)), at: self.at(40))
        #expect(self.settlements(settled) == [.notInterested])
    }

    @Test func aStalledLinkIsProbedAndEveryQuietCallMissingFromTheListSettles() throws {
        // The lock-up: quiet calls had their clocks reset, then the answer settled none of them.
        var (machine, first) = try self.talking()
        let second = try self.attempt(2)
        machine.dialled(second, at: self.at(1))
        _ = machine.event(.ringing, key: second.callID, at: self.at(2))
        let checking = try #require(self.checked(machine.tick(at: self.at(95), engineFree: 4)))
        #expect(checking == [first.callID, second.callID])
        let actions = machine.channelsListed(up: [], checked: checking, at: self.at(95.2))
        // Either may have reached the engine while AMI was quiet: both records are read.
        #expect(Set(actions) == [.readRecord(key: first.callID, attemptID: first.id), .readRecord(key: second.callID, attemptID: second.id)])
        #expect(machine.recordRead(first.callID, nil, at: self.at(97)).isEmpty)
        // No record comes: each settles when the record wait is over, from what is known.
        #expect(self.settlements(machine.recordRead(first.callID, nil, at: self.at(100.3))) == [.abandoned])
        #expect(self.settlements(machine.recordRead(second.callID, nil, at: self.at(100.3))) == [.lost])
        #expect(machine.live.isEmpty)
    }

    @Test func aFailedChannelListIsAskedAgainAfterTheRetryTime() throws {
        var (machine, attempt) = try self.talking()
        machine.disconnected(at: self.at(10))
        let checking = try #require(self.checked(machine.connected(at: self.at(11))))
        #expect(machine.channelsListed(up: nil, checked: checking, at: self.at(11)).isEmpty)
        #expect(self.checked(machine.tick(at: self.at(12), engineFree: 4)) == nil)
        #expect(self.checked(machine.tick(at: self.at(16.1), engineFree: 4)) == [attempt.callID])
    }

    @Test func noDialBeforeTheAttemptsADeadRunnerLeftAreLookedAt() throws {
        var machine = self.machine()
        let left = try self.attempt(1, answeredAt: self.at(-5))
        machine.adopt([left], at: self.at(0))
        let actions = machine.connected(at: self.at(0))
        #expect(self.checked(actions) == [left.callID])
        #expect(!machine.tick(at: self.at(1), engineFree: 4).contains { if case .dial = $0 { true } else { false } })
        _ = machine.channelsListed(up: [], checked: [left.callID], at: self.at(1))
        #expect(self.settlements(machine.recordRead(left.callID, self.record(.callback, firstAudio: self.at(-4.5)), at: self.at(1))) == [.callback])
        #expect(machine.tick(at: self.at(2), engineFree: 4).contains(.dial(count: 4, endIfIdle: true)))
    }

    @Test func aStopRequestDrainsThenHangsUpThenEndsWhateverAMIDoes() throws {
        var (machine, attempt) = try self.talking()
        var actions = machine.stop(at: self.at(10))
        #expect(!actions.contains { if case .dial = $0 { true } else { false } })
        actions = machine.tick(at: self.at(39), engineFree: 4)
        #expect(!actions.contains(.hangUp([attempt.callID])))
        machine.disconnected(at: self.at(39.5))  // AMI goes too: the run must end all the same
        #expect(machine.tick(at: self.at(40), engineFree: 4).contains(.hangUp([attempt.callID])))
        #expect(machine.tick(at: self.at(44), engineFree: 4).isEmpty)
        let end = machine.tick(at: self.at(45.1), engineFree: 4)
        guard case .end(let summary)? = end.last else { Issue.record("no end: \(end)"); return }
        #expect(summary.ending == .stopped)
        #expect(summary.unsettled == 1, "left for the next run to reconcile, not settled blind")
        #expect(machine.tick(at: self.at(50), engineFree: 4).isEmpty)
    }

    @Test func aStopRequestEndsAtOnceWhenNothingIsLive() {
        var machine = self.machine()
        _ = machine.connected(at: self.at(0))
        guard case .end(let summary)? = machine.stop(at: self.at(1)).last else { Issue.record("no end"); return }
        #expect(summary.unsettled == 0)
    }

    @Test func theEngineRoomCountsOnlyCallsNotYetAnswered() throws {
        var (machine, _) = try self.talking()
        let ringing = try self.attempt(2)
        machine.dialled(ringing, at: self.at(4))
        // Engine capacity 4 with the answered call already taken from it: 3 free, 1 may still arrive.
        #expect(machine.tick(at: self.at(5), engineFree: 3).contains(.dial(count: 2, endIfIdle: false)))
    }

    @Test func anOriginateFailureSettlesAtOnceAndAnUnclearOneIsLookedFor() throws {
        var machine = self.machine()
        _ = machine.connected(at: self.at(0))
        let failed = try self.attempt(1)
        let unclear = try self.attempt(2)
        machine.dialled(failed, at: self.at(0))
        machine.dialled(unclear, at: self.at(0))
        #expect(self.settlements(machine.originateFailed(failed.id, "no such channel type", at: self.at(0.1))) == [.failed])
        #expect(self.checked(machine.originateUnclear(unclear.id, at: self.at(10))) == [unclear.callID])
    }

    @Test func oneAbandonedCallEarlyIsNotYetARateButTwoAreAndAnEngineAbandoningEveryCallPausesAtOnce() {
        #expect(!AbandonRate.passes(abandoned: 1, answered: 1, limitPercent: 3))
        #expect(!AbandonRate.passes(abandoned: 1, answered: 34, limitPercent: 3))
        #expect(AbandonRate.passes(abandoned: 2, answered: 2, limitPercent: 3))
        #expect(AbandonRate.passes(abandoned: 4, answered: 100, limitPercent: 3))
        #expect(!AbandonRate.passes(abandoned: 3, answered: 100, limitPercent: 3))
        #expect(AbandonRate.passes(abandoned: 1, answered: 500, limitPercent: 0))
        #expect(!AbandonRate.passes(abandoned: 0, answered: 0, limitPercent: 0))
    }
}
