import CampaignCore
import CampaignStore
import Foundation

extension CampaignRunner {
    /// The rules of one campaign run, as a value: which attempts are live, when to look for their
    /// channels, when each is settled and how, when to dial, and when the run ends.
    ///
    /// The runner feeds it what happened (AMI events and replies, the store's answers, the clock)
    /// and carries out the actions it returns. Nothing here waits: every wait is a deadline the
    /// next `tick` checks, so no fault (an AMI gap, a PBX restart, a reply that never comes)
    /// leaves an attempt live for longer than the deadline that covers it.
    ///
    /// Rules:
    /// - An attempt whose events may have been missed (adopted from a dead runner, live across an
    ///   AMI gap, an Originate without a reply, quiet for `staleAfter`) has its channel looked
    ///   for (CoreShowChannels) as soon as AMI is up, again every `probeRetry` until answered.
    ///   One that is not in the answer is over; its end is settled from the engine's record.
    /// - A call that ended unseen (no Hangup from AMI) on a PBX that kept running (the same
    ///   CoreStatus startup time after the gap) ended normally: the engine's record settles it.
    ///   One whose PBX restarted, or may have, or whose runner died, is `lost` unless the engine
    ///   decided an outcome before the line went.
    /// - A stop request ends dialling at once; live calls have `drain` to finish, then are hung up
    ///   through AMI; `hangupWait` later the run ends, leaving any attempt whose end was not
    ///   seen to the next run's reconciliation (never settled blind, never dialled twice).
    struct StateMachine {
        struct Configuration {
            var maxConcurrentCalls: Int
            var callsPerSecond: Double
            /// How long to wait, once the PBX is done with an answered call, for the engine's final record.
            var recordWait: TimeInterval = 5
            /// How long AMI may stay silent on a live call before its channel is looked for.
            var staleAfter: TimeInterval = 90
            /// How often an unanswered channel look is repeated.
            var probeRetry: TimeInterval = 5
            /// How long live calls may go on after a stop request before they are hung up.
            var drain: TimeInterval = 30
            /// How long after the hang-ups the run waits for their ends.
            var hangupWait: TimeInterval = 5
            /// End when nothing is due and no call is live.
            var stopWhenIdle = true
        }

        enum Action: Hashable {
            /// Send CoreShowChannels; answer with `channelsListed(up:checked:at:)`.
            case listChannels(checking: Set<String>)
            /// Read the engine's record of the attempt; answer with `recordRead(_:_:at:)`.
            case readRecord(key: String, attemptID: UUID)
            /// Store the ring and answer times.
            case recordProgress(attemptID: UUID, CallTrace)
            case markOriginated(attemptID: UUID, at: Date)
            /// Store the settlement, then check the abandon rate (answer with `pause` when it passed).
            case settle(key: String, Attempt, Settlement)
            /// Check the pause flag, pick up to `count` due leads, write their attempts (answer
            /// `dialled` for each) and originate them; when none is due and `endIfIdle`, answer
            /// `idle` with why.
            case dial(count: Int, endIfIdle: Bool)
            /// Hang up the channels of these calls through AMI.
            case hangUp(Set<String>)
            case end(Summary)
        }

        struct Live {
            var attempt: Attempt
            var trace = CallTrace()
            var lastHeard: Date
            /// When the PBX was done with the call (Hangup seen, or its channel gone).
            var completedAt: Date?
            /// Taken over from a runner that died: AMI's early events are gone.
            var adopted = false
            /// Events about the call may have been missed: its channel must be looked for.
            var unsure = false
            /// The channel was not in a channel list: the call ended without AMI saying so.
            var gone = false
            /// Across the gap the PBX restarted (or may have): an unseen end is the PBX's, not the caller's.
            var pbxRestarted = false
            var probedAt: Date?

            /// Answered, or its end was not seen: the engine may hold a record of it.
            var mayHaveReachedEngine: Bool {
                self.trace.result == .answered || self.trace.answeredAt != nil || self.attempt.answeredAt != nil || self.adopted || self.gone
            }
        }

        let configuration: Configuration
        private(set) var live: [String: Live] = [:]
        private(set) var progress = Progress()
        private(set) var stopping: Ending?
        private var connected = false
        /// The run of Asterisk the calls were placed on (its startup time).
        private var pbx: String?
        /// No dial before the attempts a dead runner left are looked at.
        private var reconciled = true
        private var probing = false
        private var stopRequestedAt: Date?
        private var hangUpSentAt: Date?
        private var tokens = 1.0
        private var lastRefill: Date?
        private var ended = false

        init(configuration: Configuration) {
            self.configuration = configuration
        }

        // MARK: Inputs

        /// Attempts a dead runner left unsettled: followed or settled before any dial.
        mutating func adopt(_ attempts: [Attempt], at now: Date) {
            for attempt in attempts {
                self.live[attempt.callID] = Live(attempt: attempt, lastHeard: now, adopted: true, unsure: true)
            }
            if !attempts.isEmpty { self.reconciled = false }
        }

        /// Logged in to AMI; `pbx` names this run of Asterisk (its startup time), nil when unknown.
        /// Calls live across the gap whose PBX restarted, or may have, ended with it.
        /// The run's work, for the progress line.
        mutating func expect(leads: Int) { self.progress.leadsDue = leads }

        mutating func connected(at now: Date, pbx: String? = nil) -> [Action] {
            self.connected = true
            if self.lastRefill == nil { self.lastRefill = now }
            let restarted = pbx == nil || self.pbx.map { $0 != pbx } ?? false
            for key in self.live.keys where self.live[key]?.unsure == true && restarted {
                self.live[key]?.pbxRestarted = true
            }
            if let pbx { self.pbx = pbx }
            return self.tick(at: now, engineFree: nil, dial: false)
        }

        mutating func disconnected(at now: Date) {
            self.connected = false
            self.probing = false
            for key in self.live.keys where self.live[key]?.completedAt == nil {
                self.live[key]?.unsure = true
                self.live[key]?.probedAt = nil
            }
        }

        /// An AMI event about a live call, with the call's key.
        mutating func event(_ change: CallProgress, key: String, at now: Date) -> [Action] {
            guard var entry = self.live[key] else { return [] }
            let before = entry.trace
            entry.trace.apply(change, at: now)
            entry.lastHeard = now
            var actions: [Action] = []
            if entry.trace.ringingAt != before.ringingAt || entry.trace.answeredAt != before.answeredAt || entry.trace.amdStatus != before.amdStatus {
                actions.append(.recordProgress(attemptID: entry.attempt.id, entry.trace))
            }
            if entry.completedAt == nil, entry.trace.isComplete || (entry.adopted && entry.trace.hungUp) {
                entry.completedAt = now
                self.live[key] = entry
                return actions + self.finish(key, at: now)
            }
            self.live[key] = entry
            return actions
        }

        mutating func originateQueued(_ id: UUID, at now: Date) -> [Action] {
            [.markOriginated(attemptID: id, at: now)]
        }

        mutating func originateFailed(_ id: UUID, _ message: String, at now: Date) -> [Action] {
            self.settle(id.uuidString.lowercased(), Settlement(outcome: .failed, dialResult: .failed, originateError: message))
        }

        /// No reply to the Originate: the call may be ringing. Its channel is looked for.
        mutating func originateUnclear(_ id: UUID, at now: Date) -> [Action] {
            self.live[id.uuidString.lowercased()]?.unsure = true
            return self.tick(at: now, engineFree: nil, dial: false)
        }

        /// CoreShowChannels answered (`up`: the Uniqueids it listed; nil when it failed) for the
        /// calls in `checked`.
        mutating func channelsListed(up: Set<String>?, checked: Set<String>, at now: Date) -> [Action] {
            self.probing = false
            guard let up else { return [] }
            let upKeys = Set(up.map { $0.split(separator: ";").first.map(String.init) ?? $0 })
            var actions: [Action] = []
            for key in checked {
                guard var entry = self.live[key], entry.completedAt == nil else { continue }
                if upKeys.contains(key) {
                    entry.unsure = false
                    entry.lastHeard = now
                    self.live[key] = entry
                } else {
                    entry.gone = !entry.trace.hungUp
                    entry.unsure = false
                    entry.completedAt = now
                    self.live[key] = entry
                    actions += self.finish(key, at: now)
                }
            }
            if !self.live.values.contains(where: { $0.adopted && $0.unsure }) { self.reconciled = true }
            return actions
        }

        /// The engine's record of an answered call, as the store has it now.
        /// Settles the call once the record is final, or once `recordWait` has passed without it.
        mutating func recordRead(_ key: String, _ record: (report: EngineReport, finished: Bool)?, at now: Date) -> [Action] {
            guard let entry = self.live[key], let completedAt = entry.completedAt else { return [] }
            guard record?.finished == true || now.timeIntervalSince(completedAt) >= self.configuration.recordWait else { return [] }
            return self.settle(key, Self.settlement(entry, engine: record?.report))
        }

        mutating func dialled(_ attempt: Attempt, at now: Date) {
            self.tokens -= 1
            self.live[attempt.callID] = Live(attempt: attempt, lastHeard: now)
            self.progress.dialled += 1
        }

        /// Nothing is due; `ending` says why, nil when something will be due at once after all.
        mutating func idle(_ ending: Ending?) {
            if let ending, self.live.isEmpty, self.stopping == nil { self.stopping = ending }
        }

        mutating func pause(_ reason: String) {
            if self.stopping == nil { self.stopping = .paused(reason) }
        }

        /// The store could not be written: no new dial; live calls end as they would.
        mutating func storeFailed(_ reason: String) {
            if self.stopping == nil || self.stopping == .stopped { self.stopping = .storeFailed(reason) }
        }

        /// A stop request (the first signal): no new dial; live calls get the drain time.
        mutating func stop(at now: Date) -> [Action] {
            if self.stopping == nil { self.stopping = .stopped }
            if self.stopRequestedAt == nil { self.stopRequestedAt = now }
            return self.tick(at: now, engineFree: nil, dial: false)
        }

        /// The clock moved: deadlines, channel looks, dialling and the end.
        /// `engineFree`: the calls the engine can take now, when it is in this process.
        mutating func tick(at now: Date, engineFree: Int?) -> [Action] {
            self.tick(at: now, engineFree: engineFree, dial: true)
        }

        // MARK: Rules

        private mutating func tick(at now: Date, engineFree: Int?, dial: Bool) -> [Action] {
            guard !self.ended else { return [] }
            var actions: [Action] = []
            // Calls the PBX is done with, waiting for the engine's record.
            for (key, entry) in self.live where entry.completedAt != nil {
                actions.append(.readRecord(key: key, attemptID: entry.attempt.id))
            }
            actions += self.probe(at: now)
            actions += self.drain(at: now)
            if dial, let count = self.dialRoom(at: now, engineFree: engineFree) {
                actions.append(.dial(count: count, endIfIdle: self.live.isEmpty && self.configuration.stopWhenIdle))
            }
            if let end = self.end(at: now) { actions.append(end) }
            return actions
        }

        /// The calls whose channels must be looked for now.
        private mutating func probe(at now: Date) -> [Action] {
            guard self.connected, !self.probing else { return [] }
            var checking: Set<String> = []
            for (key, entry) in self.live where entry.completedAt == nil {
                let stale = now.timeIntervalSince(entry.lastHeard) >= self.configuration.staleAfter
                let due = entry.probedAt.map { now.timeIntervalSince($0) >= self.configuration.probeRetry } ?? true
                if (entry.unsure || stale || entry.trace.hungUp) && due { checking.insert(key) }
            }
            guard !checking.isEmpty else { return [] }
            for key in checking { self.live[key]?.probedAt = now }
            self.probing = true
            return [.listChannels(checking: checking)]
        }

        private mutating func drain(at now: Date) -> [Action] {
            guard let stopAt = self.stopRequestedAt, self.hangUpSentAt == nil, !self.live.isEmpty,
                now.timeIntervalSince(stopAt) >= self.configuration.drain
            else { return [] }
            self.hangUpSentAt = now
            return [.hangUp(Set(self.live.keys))]
        }

        private mutating func dialRoom(at now: Date, engineFree: Int?) -> Int? {
            guard self.stopping == nil, self.connected, self.reconciled else { return nil }
            let rate = self.configuration.callsPerSecond
            let elapsed = self.lastRefill.map { max(0, now.timeIntervalSince($0)) } ?? 0
            self.lastRefill = now
            self.tokens = min(max(1, rate), self.tokens + elapsed * rate)
            var room = self.configuration.maxConcurrentCalls - self.live.count
            if let engineFree {
                // The engine's free places already leave out the calls it talks to: only the
                // calls not answered yet may still arrive there.
                room = min(room, engineFree - self.live.values.filter { $0.trace.answeredAt == nil && $0.completedAt == nil }.count)
            }
            let count = min(room, Int(self.tokens))
            return count > 0 ? count : nil
        }

        private mutating func end(at now: Date) -> Action? {
            guard let stopping = self.stopping else { return nil }
            // After the hang-ups' wait, only calls whose end was never seen are left behind: one
            // the PBX is done with settles within the record wait.
            let waitedOut = self.hangUpSentAt.map { now.timeIntervalSince($0) >= self.configuration.hangupWait } ?? false
            guard self.live.isEmpty || (waitedOut && self.live.values.allSatisfy { $0.completedAt == nil }) else { return nil }
            self.ended = true
            return .end(Summary(progress: self.reported, ending: stopping, unsettled: self.live.count))
        }

        /// A call the PBX is done with: settled at once, or, when the engine may have talked to
        /// it, once the engine's record is read.
        private mutating func finish(_ key: String, at now: Date) -> [Action] {
            guard let entry = self.live[key] else { return [] }
            if entry.mayHaveReachedEngine { return [.readRecord(key: key, attemptID: entry.attempt.id)] }
            return self.settle(key, Self.settlement(entry, engine: nil))
        }

        static func settlement(_ entry: Live, engine: EngineReport?) -> Settlement {
            var trace = entry.trace
            if trace.answeredAt == nil { trace.answeredAt = entry.attempt.answeredAt }
            var (outcome, abandoned) = AttemptOutcome.settle(trace: trace, engine: engine)
            let crashed = entry.adopted && trace.reason == nil && trace.cause == nil
            if entry.gone, !entry.pbxRestarted, !crashed {
                // Ended while AMI was away, on a PBX that kept running: a normal end (the callee
                // or the agent hung up) that was not heard. The engine's record tells how it went.
                if trace.answeredAt != nil || engine?.firstAudioAt != nil {
                    if trace.dialStatus == nil { trace.dialStatus = "ANSWER" }
                    if trace.answeredAt == nil { trace.answeredAt = engine?.firstAudioAt }
                    (outcome, abandoned) = AttemptOutcome.settle(trace: trace, engine: engine)
                } else {
                    (outcome, abandoned) = (.lost, false)
                }
            } else if entry.gone || crashed {
                // The end went unseen and the PBX (or the runner) went down with the call: the
                // stored answer time and the engine's record tell. A conversation cut with
                // nothing decided is lost, not abandoned, when the agent had spoken within the limit.
                let decided = engine?.outcome.flatMap { $0.isDecided ? $0 : nil }
                if let answeredAt = trace.answeredAt {
                    abandoned = engine?.firstAudioAt.map { $0.timeIntervalSince(answeredAt) > AttemptOutcome.abandonLimit } ?? true
                    outcome = decided ?? (abandoned ? .abandoned : .lost)
                } else if engine?.firstAudioAt != nil {
                    // Answered while AMI was away: when is not known, so it is not counted abandoned.
                    (outcome, abandoned) = (decided ?? .lost, false)
                } else {
                    (outcome, abandoned) = (.lost, false)
                }
            }
            let dialResult = trace.reason != nil || trace.cause != nil ? trace.result : nil
            return Settlement(
                outcome: outcome, trace: trace, dialResult: dialResult, firstAudioAt: engine?.firstAudioAt, callbackAt: engine?.callbackAt,
                abandoned: abandoned)
        }

        private mutating func settle(_ key: String, _ settlement: Settlement) -> [Action] {
            guard let entry = self.live.removeValue(forKey: key) else { return [] }
            self.progress.settled += 1
            self.progress.outcomes[settlement.outcome, default: 0] += 1
            return [.settle(key: key, entry.attempt, settlement)]
        }

        /// The counters with the ringing and talking calls counted now.
        var reported: Progress {
            var progress = self.progress
            progress.ringing = self.live.values.filter { $0.trace.ringingAt != nil && $0.trace.answeredAt == nil }.count
            progress.talking = self.live.values.filter { $0.trace.answeredAt != nil && $0.completedAt == nil }.count
            progress.live = self.live.count
            return progress
        }
    }
}

extension AttemptOutcome {
    /// An outcome the conversation decided, as opposed to one that only says the call ended.
    var isDecided: Bool {
        switch self {
        case .interested, .notInterested, .callback, .doNotCall, .wrongPerson: return true
        default: return false
        }
    }
}
