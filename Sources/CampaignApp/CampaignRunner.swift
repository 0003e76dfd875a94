import AsteriskManager
import CampaignCore
import CampaignStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Dials a campaign: picks due leads (callee-local window open, retry time reached, not on the
/// do-not-call list, no live attempt), writes each attempt before its Originate, follows the
/// calls through AMI, takes the engine's record of each answered call, and settles every
/// attempt with the retry policy. A `Service`: a graceful shutdown stops dialling and lets the
/// live calls finish.
///
/// Crash safety: attempts a dead runner left unsettled are reconciled first, through AMI's
/// channel list. A channel still up is followed to its end; one that is gone is settled from
/// what the store has (the engine's record, the answer time) and never dialled again at once.
public final class CampaignRunner: Service, Sendable {
    public struct Options: Sendable {
        /// Stop when nothing is due and no call is live (false: keep waiting for due work).
        public var stopWhenIdle = true
        public var now: @Sendable () -> Date = { Date() }
        public var tick: Duration = .milliseconds(100)
        /// How long to wait, after the PBX says an answered call ended, for the engine's final record.
        public var recordWait: Duration = .seconds(5)
        /// How long AMI may stay silent on an originated call before its channel is looked for.
        public var staleAfter: Duration = .seconds(90)
        /// Calls the engine can take now, when it is in this process; nil when unknown.
        public var engineCapacity: (@Sendable () -> Int)?
        public var onProgress: (@Sendable (Progress) -> Void)?
        public init() {}
    }

    /// Live counters, for the progress line.
    public struct Progress: Sendable, Hashable {
        public var dialled = 0
        public var ringing = 0
        public var talking = 0
        public var settled = 0
        public var outcomes: [AttemptOutcome: Int] = [:]
    }

    public enum Ending: Sendable, Hashable, CustomStringConvertible {
        /// Every lead is done.
        case finished
        /// Leads wait for a retry time; the next is due then.
        case nothingDue(next: Date?)
        /// Due leads wait for their calling window to open.
        case windowClosed
        case paused(String)
        /// A shutdown request (SIGINT/SIGTERM).
        case stopped

        public var description: String {
            switch self {
            case .finished: return "every lead is done"
            case .nothingDue(let next?): return "nothing due until \(ISO8601DateFormatter().string(from: next))"
            case .nothingDue(nil): return "nothing due"
            case .windowClosed: return "the calling window is closed for every due lead"
            case .paused(let reason): return "paused: \(reason)"
            case .stopped: return "stopped on request"
            }
        }
    }

    public struct Summary: Sendable, Hashable, CustomStringConvertible {
        public var progress: Progress
        public var ending: Ending
        public var description: String { self.ending.description }
    }

    let campaign: Campaign
    let campaignID: Int64
    let store: CampaignStore
    let ami: AMIClient
    let logger: Logger
    let options: Options
    private let result = ResultBox()

    public init(campaign: Campaign, campaignID: Int64, store: CampaignStore, ami: AMIClient, options: Options = Options(), logger: Logger) {
        self.campaign = campaign
        self.campaignID = campaignID
        self.store = store
        self.ami = ami
        self.options = options
        var logger = logger
        logger[metadataKey: "campaign"] = "\(campaign.name)"
        self.logger = logger
    }

    /// How the last `run()` ended.
    public var summary: Summary? { self.result.value }

    enum Input: Sendable {
        case ami(AMIClient.Event)
        case tick
        case originateFailed(UUID, String)
        case originateQueued(UUID, Date)
        case originateUnclear(UUID)
        case channels(Set<String>?)
        case stop
    }

    struct Live {
        var attempt: Attempt
        var trace = CallTrace()
        var lastHeard: Date
        /// When the PBX said the call was over (for waiting on the engine's record).
        var completedAt: Date?
        var adopted = false
    }

    public func run() async throws {
        let (inputs, post) = AsyncStream.makeStream(of: Input.self)
        let events = self.ami.subscribe()
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in events { post.yield(.ami(event)) }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: self.options.tick)
                        post.yield(.tick)
                    }
                }
                let summary = try await self.loop(inputs, post: post)
                self.result.set(summary)
                group.cancelAll()
            }
        } onGracefulShutdown: {
            post.yield(.stop)
        }
    }

    // MARK: The loop

    private func loop(_ inputs: AsyncStream<Input>, post: AsyncStream<Input>.Continuation) async throws -> Summary {
        var live: [String: Live] = [:]
        var progress = Progress()
        var connected = false
        var reconciled = false
        var reconciling = false
        var stopping: Ending?
        var tokens = 1.0
        var lastRefill = ContinuousClock.now
        var zones = ZoneLists()

        func report() {
            progress.ringing = live.values.filter { $0.trace.ringingAt != nil && $0.trace.answeredAt == nil }.count
            progress.talking = live.values.filter { $0.trace.answeredAt != nil && $0.completedAt == nil }.count
            self.options.onProgress?(progress)
        }

        func reconcile() {
            guard !reconciling else { return }
            reconciling = true
            Task {
                do {
                    let response = try await self.ami.send(.coreShowChannels)
                    post.yield(.channels(Set(response.items.compactMap { $0["Uniqueid"] })))
                } catch {
                    post.yield(.channels(nil))
                }
            }
        }

        func settle(_ key: String, _ settlement: Settlement) {
            guard let entry = live.removeValue(forKey: key) else { return }
            do {
                try self.store.settle(entry.attempt.id, settlement, now: self.options.now(), policy: self.campaign.retry, window: self.campaign.window)
            } catch {
                self.logger.error("attempt not settled", metadata: ["call.id": "\(key)", "error": "\(error)"])
            }
            progress.settled += 1
            progress.outcomes[settlement.outcome, default: 0] += 1
            self.logger.info(
                "call settled",
                metadata: [
                    "call.id": "\(key)", "call.outcome": "\(settlement.outcome.rawValue)", "call.dial_result": "\(settlement.dialResult?.rawValue ?? "-")",
                ])
            self.checkAbandonRate(&stopping)
        }

        /// Settles a call the PBX is done with, once the engine's record is in (answered calls).
        func finish(_ key: String, force: Bool) {
            guard var entry = live[key] else { return }
            let now = self.options.now()
            if entry.completedAt == nil {
                entry.completedAt = now
                live[key] = entry
            }
            var engine: EngineReport?
            if entry.trace.result == .answered || entry.adopted {
                let record = try? self.store.callRecord(entry.attempt.id)
                let waited = now.timeIntervalSince(entry.completedAt!) >= self.options.recordWait.seconds
                if record?.finished != true, !waited, !force { return }
                engine = record.map {
                    EngineReport(outcome: $0.summary.outcome.flatMap(AttemptOutcome.init(rawValue:)), firstAudioAt: $0.summary.firstAudioAt, callbackAt: $0.summary.callbackAt)
                }
            }
            var trace = entry.trace
            if trace.answeredAt == nil { trace.answeredAt = entry.attempt.answeredAt }
            var (outcome, abandoned) = AttemptOutcome.settle(trace: trace, engine: engine)
            if entry.adopted, trace.reason == nil, trace.cause == nil {
                // Followed after a restart: AMI's early events are gone; the stored answer time
                // and the engine's record tell. A conversation cut by the crash is lost, not
                // abandoned, when the agent had spoken within the limit.
                if let answeredAt = trace.answeredAt {
                    abandoned = engine?.firstAudioAt.map { $0.timeIntervalSince(answeredAt) > AttemptOutcome.abandonLimit } ?? true
                    outcome = engine?.outcome ?? (abandoned ? .abandoned : .lost)
                } else {
                    (outcome, abandoned) = (.lost, false)
                }
            }
            settle(
                key,
                Settlement(
                    outcome: outcome, trace: trace, dialResult: trace.reason != nil || trace.cause != nil ? trace.result : nil,
                    firstAudioAt: engine?.firstAudioAt, callbackAt: engine?.callbackAt, abandoned: abandoned))
        }

        // Attempts a previous runner left behind are followed or settled before any dialling.
        for attempt in try self.store.unsettledAttempts(campaignID: self.campaignID) {
            live[attempt.callID] = Live(attempt: attempt, lastHeard: self.options.now(), adopted: true)
        }
        if !live.isEmpty {
            self.logger.notice("unsettled attempts from an earlier run", metadata: ["attempts": "\(live.count)"])
        } else {
            reconciled = true
        }

        for await input in inputs {
            let now = self.options.now()
            switch input {
            case .stop:
                if stopping == nil { stopping = .stopped }
                self.logger.notice("stopping: no new calls", metadata: ["live": "\(live.count)"])

            case .ami(.connected):
                connected = true
                // After a reconnect, events may have been missed: look at what is still up.
                if !live.isEmpty { reconcile() }

            case .ami(.disconnected(let error)):
                if connected { self.logger.warning("AMI connection lost", metadata: ["error": "\(error)"]) }
                connected = false

            case .ami(.event(let event)):
                guard let id = event.uniqueID else { continue }
                let key = id.split(separator: ";").first.map(String.init) ?? id
                guard var entry = live[key], let change = CallProgress(event, callID: key) else { continue }
                let before = entry.trace
                entry.trace.apply(change, at: now)
                entry.lastHeard = now
                live[key] = entry
                if entry.trace.ringingAt != before.ringingAt || entry.trace.answeredAt != before.answeredAt || entry.trace.amdStatus != before.amdStatus {
                    try? self.store.recordProgress(entry.attempt.id, trace: entry.trace)
                }
                if entry.trace.isComplete || (entry.adopted && entry.trace.hungUp) { finish(key, force: false) }

            case .originateQueued(let id, let time):
                try? self.store.markOriginated(id, at: time)

            case .originateFailed(let id, let message):
                settle(id.uuidString.lowercased(), Settlement(outcome: .failed, dialResult: .failed, originateError: message))

            case .originateUnclear(let id):
                // No answer to the Originate: the call may be ringing. Look for its channel.
                self.logger.warning("Originate unanswered; looking for the channel", metadata: ["call.id": "\(id)"])
                reconcile()

            case .channels(let channels):
                reconciling = false
                guard let channels else { continue }
                let up = Set(channels.map { $0.split(separator: ";").first.map(String.init) ?? $0 })
                for (key, entry) in live where !up.contains(key) {
                    let silent = now.timeIntervalSince(entry.lastHeard)
                    // A channel not yet created is normal for a fresh Originate: only settle the quiet ones.
                    if entry.adopted || silent >= self.options.staleAfter.seconds || entry.trace.hungUp {
                        finish(key, force: true)
                    }
                }
                reconciled = true

            case .tick:
                break
            }

            // Calls the PBX finished, waiting for the engine's record.
            for key in live.keys where live[key]?.completedAt != nil { finish(key, force: false) }
            // Calls AMI has been quiet about for too long.
            if connected, live.values.contains(where: { now.timeIntervalSince($0.lastHeard) >= self.options.staleAfter.seconds }) {
                for key in live.keys { live[key]?.lastHeard = now }
                reconcile()
            }
            if connected, !reconciled { reconcile() }

            // Dial.
            if stopping == nil, connected, reconciled {
                if let reason = try self.store.pauseReason(campaignID: self.campaignID) {
                    stopping = .paused(reason)
                } else {
                    let elapsed = ContinuousClock.now - lastRefill
                    lastRefill = ContinuousClock.now
                    tokens = min(max(1, self.campaign.callsPerSecond), tokens + elapsed.seconds * self.campaign.callsPerSecond)
                    var room = self.campaign.maxConcurrentCalls - live.count
                    if let engine = self.options.engineCapacity?() {
                        // The engine's free places already leave out the calls it talks to: only
                        // the calls not answered yet may still arrive there.
                        room = min(room, engine - live.values.filter { $0.trace.answeredAt == nil && $0.completedAt == nil }.count)
                    }
                    let wanted = min(room, Int(tokens))
                    if wanted > 0 {
                        let due = try self.dueLeads(now: now, limit: wanted, zones: &zones)
                        for lead in due {
                            guard case .started(let attempt) = try self.store.beginAttempt(leadID: lead.id, now: now, channel: self.campaign.channel(for:))
                            else { continue }
                            tokens -= 1
                            live[attempt.callID] = Live(attempt: attempt, lastHeard: now)
                            progress.dialled += 1
                            self.originate(attempt, post: post)
                        }
                        if due.isEmpty, live.isEmpty, self.options.stopWhenIdle {
                            if let idle = try self.idleEnding(now: now) {
                                stopping = idle
                            } else {
                                zones.fetchedAt = nil  // due leads the cached lists do not cover
                            }
                        }
                    }
                }
            }
            report()
            if let stopping, live.isEmpty {
                return Summary(progress: progress, ending: stopping)
            }
        }
        return Summary(progress: progress, ending: stopping ?? .stopped)
    }

    /// The waiting leads' zone lists, fetched again at most once a minute: the query reads every
    /// waiting lead, and a campaign of a million leads must not pay that on every tick.
    struct ZoneLists {
        var lists: [String] = []
        var fetchedAt: ContinuousClock.Instant?
    }

    /// Leads to dial now: due, and in zones whose window is open at `now`.
    func dueLeads(now: Date, limit: Int, zones: inout ZoneLists) throws -> [DueLead] {
        if zones.fetchedAt.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true {
            zones.lists = try self.store.waitingTimeZones(campaignID: self.campaignID)
            zones.fetchedAt = ContinuousClock.now
        }
        let open = zones.lists.filter { self.isOpen($0, at: now) }
        return try self.store.dueLeads(campaignID: self.campaignID, zones: open, now: now, limit: limit, only: self.testNumbers)
    }

    /// Why nothing can be dialled now; nil when something can after all.
    func idleEnding(now: Date) throws -> Ending? {
        let due = try self.store.pendingTimeZones(campaignID: self.campaignID, now: now, only: self.testNumbers)
        if !due.isEmpty { return due.contains { self.isOpen($0, at: now) } ? nil : .windowClosed }
        let next = try self.store.nextDueTime(campaignID: self.campaignID)
        return next.pending ? .nothingDue(next: next.at) : .finished
    }

    func isOpen(_ zoneList: String, at now: Date) -> Bool {
        self.campaign.window.isOpen(at: now, in: zoneList.split(separator: "|").compactMap { TimeZone(identifier: String($0)) })
    }

    var testNumbers: Set<String>? { self.campaign.testNumbers.map { Set($0.map(\.e164)) } }

    /// Sends the Originate; the attempt row is already committed.
    func originate(_ attempt: Attempt, post: AsyncStream<Input>.Continuation) {
        let id = attempt.callID
        let target: Originate.Target
        switch self.campaign.answered {
        case .dialplan(let context, let exten, let priority):
            target = .dialplan(context: context, exten: exten, priority: priority)
        case .audioSocket:
            target = .application(name: "AudioSocket", data: "\(id),\(self.campaign.engine.host):\(self.campaign.engine.port)")
        }
        let originate = Originate(
            channel: attempt.channel, target: target, timeoutMilliseconds: Int(self.campaign.ringTimeout.seconds * 1000),
            callerID: self.campaign.callerID, variables: [("CEX_CALL_ID", id)], channelID: id, actionID: id)
        self.logger.debug("originate", metadata: ["call.id": "\(id)", "attempt": "\(attempt.number)"])
        Task {
            do {
                let response = try await self.ami.send(.originate(originate))
                if response.isSuccess {
                    post.yield(.originateQueued(attempt.id, self.options.now()))
                } else {
                    post.yield(.originateFailed(attempt.id, response.text ?? response.status))
                }
            } catch let error as AMIClientError where error == .notConnected {
                post.yield(.originateFailed(attempt.id, "not connected to AMI; nothing was sent"))
            } catch {
                post.yield(.originateUnclear(attempt.id))
            }
        }
    }

    /// Pauses the campaign when abandoned calls pass the limit over the last 30 days.
    func checkAbandonRate(_ stopping: inout Ending?) {
        guard let rate = try? self.store.abandonRate(campaignID: self.campaignID, since: self.options.now().addingTimeInterval(-30 * 86_400)),
            rate.answered > 0, Double(rate.abandoned) * 100 / Double(rate.answered) > self.campaign.abandonLimitPercent
        else { return }
        let reason = "abandon rate \(rate.abandoned)/\(rate.answered) passed \(self.campaign.abandonLimitPercent)% over 30 days"
        self.logger.error("pausing the campaign", metadata: ["reason": "\(reason)"])
        try? self.store.setPaused(campaignID: self.campaignID, true, reason: reason)
        if stopping == nil { stopping = .paused(reason) }
    }

}

/// Where `run()` leaves its summary.
final class ResultBox: Sendable {
    private let box = NIOLockedValueBox<CampaignRunner.Summary?>(nil)
    var value: CampaignRunner.Summary? { self.box.withLockedValue { $0 } }
    func set(_ value: CampaignRunner.Summary) { self.box.withLockedValue { $0 = value } }
}

extension Duration {
    /// The duration in seconds, fractions included.
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}
