import AsteriskManager
import CampaignCore
import CampaignStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

/// Dials a campaign: picks due leads (callee-local window open, retry time reached, not on the
/// do-not-call list, no live attempt), writes each attempt before its Originate, follows the
/// calls through AMI, takes the engine's record of each answered call, and settles every
/// attempt with the retry policy. A `Service`: a graceful shutdown stops dialling, lets the live
/// calls run for the drain time, then hangs them up. The rules are `CampaignRunner.StateMachine`;
/// this class carries out its actions (AMI, the store, the log).
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
        /// How often an unanswered look for channels is repeated.
        public var probeRetry: Duration = .seconds(5)
        /// How long live calls may go on after a stop request before they are hung up.
        public var drain: Duration = .seconds(30)
        /// How long after those hang-ups the run waits for the calls' ends before it returns.
        public var hangupWait: Duration = .seconds(5)
        /// Calls the engine can take now, when it is in this process; nil when unknown.
        public var engineCapacity: (@Sendable () -> Int)?
        public var onProgress: (@Sendable (Progress) -> Void)?
        public init() {}
    }

    /// Live counters, for the progress line.
    public struct Progress: Sendable, Hashable {
        /// Leads due when the run started (and live attempts taken over): the run's work.
        public var leadsDue = 0
        public var dialled = 0
        public var ringing = 0
        public var talking = 0
        public var settled = 0
        /// Attempts not settled yet (ringing, talking, or waiting for the engine's record).
        public var live = 0
        public var outcomes: [AttemptOutcome: Int] = [:]
        public init() {}
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
        /// The store could not be written (a full disk): no new call was dialled; the live ones ended.
        case storeFailed(String)

        public var description: String {
            switch self {
            case .finished: return "every lead is done"
            case .nothingDue(let next?): return "nothing due until \(ISO8601DateFormatter().string(from: next))"
            case .nothingDue(nil): return "nothing due"
            case .windowClosed: return "the calling window is closed for every due lead"
            case .paused(let reason): return "paused: \(reason)"
            case .stopped: return "stopped on request"
            case .storeFailed(let reason): return "stopped dialling: \(reason); the next run goes on where this one stopped"
            }
        }
    }

    public struct Summary: Sendable, Hashable, CustomStringConvertible {
        public var progress: Progress
        public var ending: Ending
        /// Attempts whose end was not seen when the run ended: the next run reconciles them.
        public var unsettled = 0
        /// The signal that stopped the run, if one did.
        public var signal: UnixSignal?
        public var description: String {
            self.unsettled == 0 ? self.ending.description : "\(self.ending) (\(self.unsettled) attempts left for the next run to reconcile)"
        }
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
        /// Logged in, and the PBX's startup time read (nil when CoreStatus did not say).
        case identified(pbx: String?)
        case tick
        case originateFailed(UUID, String)
        case originateQueued(UUID, Date)
        case originateUnclear(UUID)
        case channels(up: Set<String>?, checked: Set<String>)
        case stop
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

    /// Feeds the state machine and carries out what it asks for; the rules live there.
    private func loop(_ inputs: AsyncStream<Input>, post: AsyncStream<Input>.Continuation) async throws -> Summary {
        var machine = StateMachine(configuration: self.machineConfiguration)
        var zones = ZoneLists()
        var connected = false
        let adopted = try self.store.unsettledAttempts(campaignID: self.campaignID)
        machine.adopt(adopted, at: self.options.now())
        machine.expect(leads: adopted.count + ((try? self.store.dueLeadCount(campaignID: self.campaignID, now: self.options.now(), only: self.testNumbers)) ?? 0))
        if !adopted.isEmpty {
            self.logger.notice("unsettled attempts from an earlier run", metadata: ["attempts": "\(adopted.count)"])
        }
        for await input in inputs {
            let now = self.options.now()
            let actions: [StateMachine.Action]
            switch input {
            case .stop:
                self.logger.notice(
                    "stopping: no new calls", metadata: ["live": "\(machine.live.count)", "drain": "\(self.options.drain)"])
                actions = machine.stop(at: now)
            case .ami(.connected):
                // Which run of Asterisk this is decides how calls that ended unseen are settled.
                Task {
                    let status = try? await self.ami.send(.coreStatus)
                    let startup = status.flatMap { status in
                        status.message["CoreStartupDate"].map { "\($0) \(status.message["CoreStartupTime"] ?? "")" }
                    }
                    post.yield(.identified(pbx: startup))
                }
                continue
            case .identified(let pbx):
                guard self.ami.isConnected else { continue }
                connected = true
                actions = machine.connected(at: now, pbx: pbx)
            case .ami(.disconnected(let error)):
                if connected { self.logger.warning("AMI connection lost", metadata: ["error": "\(error)"]) }
                connected = false
                machine.disconnected(at: now)
                actions = []
            case .ami(.event(let event)):
                guard let id = event.uniqueID else { continue }
                let key = id.split(separator: ";").first.map(String.init) ?? id
                guard let change = CallProgress(event, callID: key) else { continue }
                actions = machine.event(change, key: key, at: now)
            case .originateQueued(let id, let time):
                actions = machine.originateQueued(id, at: time)
            case .originateFailed(let id, let message):
                actions = machine.originateFailed(id, message, at: now)
            case .originateUnclear(let id):
                self.logger.warning("Originate unanswered; looking for the channel", metadata: ["call.id": "\(id)"])
                actions = machine.originateUnclear(id, at: now)
            case .channels(let up, let checked):
                actions = machine.channelsListed(up: up, checked: checked, at: now)
            case .tick:
                actions = machine.tick(at: now, engineFree: self.options.engineCapacity?())
            }
            if let summary = try self.perform(actions, on: &machine, zones: &zones, post: post) {
                if summary.unsettled > 0 {
                    self.logger.warning(
                        "attempts left for the next run to reconcile: their end was not seen",
                        metadata: ["attempts": "\(summary.unsettled)"])
                }
                return summary
            }
            self.options.onProgress?(machine.reported)
        }
        // Cancelled (a second signal): what is live is reconciled by the next run.
        return Summary(progress: machine.reported, ending: machine.stopping ?? .stopped, unsettled: machine.live.count)
    }

    var machineConfiguration: StateMachine.Configuration {
        var configuration = StateMachine.Configuration(
            maxConcurrentCalls: self.campaign.maxConcurrentCalls, callsPerSecond: self.campaign.callsPerSecond)
        configuration.recordWait = self.options.recordWait.seconds
        configuration.staleAfter = self.options.staleAfter.seconds
        configuration.probeRetry = self.options.probeRetry.seconds
        configuration.drain = self.options.drain.seconds
        configuration.hangupWait = self.options.hangupWait.seconds
        configuration.stopWhenIdle = self.options.stopWhenIdle
        return configuration
    }

    /// Carries out the machine's actions, feeding it the answers the store gives at once; the
    /// summary when the run is over.
    private func perform(
        _ actions: [StateMachine.Action], on machine: inout StateMachine, zones: inout ZoneLists, post: AsyncStream<Input>.Continuation
    ) throws -> Summary? {
        var queue = actions[...]
        while let action = queue.popFirst() {
            let now = self.options.now()
            switch action {
            case .listChannels(let checking):
                Task {
                    let up = try? await self.ami.send(.coreShowChannels).items.compactMap { $0["Uniqueid"] }
                    post.yield(.channels(up: up.map(Set.init), checked: checking))
                }
            case .readRecord(let key, let attemptID):
                let record = (try? self.store.callRecord(attemptID)).map { record in
                    (
                        report: EngineReport(
                            outcome: record.summary.outcome.flatMap(AttemptOutcome.init(rawValue:)), firstAudioAt: record.summary.firstAudioAt,
                            callbackAt: record.summary.callbackAt),
                        finished: record.finished
                    )
                }
                queue.append(contentsOf: machine.recordRead(key, record, at: now))
            case .recordProgress(let attemptID, let trace):
                try? self.store.recordProgress(attemptID, trace: trace)
            case .markOriginated(let attemptID, let time):
                try? self.store.markOriginated(attemptID, at: time)
            case .settle(let key, let attempt, let settlement):
                self.settle(key, attempt, settlement)
                if let reason = self.abandonRatePassed() { machine.pause(reason) }
            case .dial(let count, let endIfIdle):
                do {
                    try self.dial(count, endIfIdle: endIfIdle, now: now, on: &machine, zones: &zones, post: post)
                } catch {
                    // An attempt is on record before its call is dialled: a write that fails dials nothing.
                    guard let reason = StoreError.passingFault(error) else { throw error }
                    self.logger.error("the store cannot be written: no new calls; the live ones end", metadata: [
                        "error": "\(reason)", "live": "\(machine.live.count)",
                    ])
                    machine.storeFailed(reason)
                }
            case .hangUp(let keys):
                self.logger.notice("drain time over: hanging up the live calls", metadata: ["live": "\(keys.count)"])
                Task { await self.hangUp(keys) }
            case .end(let summary):
                return summary
            }
        }
        return nil
    }

    /// Dials up to `count` due leads, each on record as an attempt before its Originate.
    func dial(
        _ count: Int, endIfIdle: Bool, now: Date, on machine: inout StateMachine, zones: inout ZoneLists, post: AsyncStream<Input>.Continuation
    ) throws {
        if let reason = try self.store.pauseReason(campaignID: self.campaignID) {
            machine.pause(reason)
            return
        }
        let due = try self.dueLeads(now: now, limit: count, zones: &zones)
        for lead in due {
            guard case .started(let attempt) = try self.store.beginAttempt(leadID: lead.id, now: now, channel: self.campaign.channel(for:))
            else { continue }
            machine.dialled(attempt, at: now)
            self.originate(attempt, post: post)
        }
        if due.isEmpty, endIfIdle {
            let ending = try self.idleEnding(now: now)
            if ending == nil { zones.fetchedAt = nil }  // due leads the cached lists do not cover
            machine.idle(ending)
        }
    }

    func settle(_ key: String, _ attempt: Attempt, _ settlement: Settlement) {
        do {
            try self.store.settle(attempt.id, settlement, now: self.options.now(), policy: self.campaign.retry, window: self.campaign.window)
        } catch {
            self.logger.error("attempt not settled", metadata: ["call.id": "\(key)", "error": "\(error)"])
        }
        self.logger.info(
            "call settled",
            metadata: [
                "call.id": "\(key)", "call.outcome": "\(settlement.outcome.rawValue)", "call.dial_result": "\(settlement.dialResult?.rawValue ?? "-")",
            ])
    }

    /// Hangs up, through AMI, every channel of these calls (their names come from the channel list).
    func hangUp(_ keys: Set<String>) async {
        do {
            let channels = try await self.ami.send(.coreShowChannels).items
            for item in channels {
                guard let id = item["Uniqueid"], let name = item["Channel"], keys.contains(String(id.split(separator: ";")[0])) else { continue }
                let response = try await self.ami.send(.hangup(channel: name))
                if !response.isSuccess {
                    self.logger.warning("hang-up refused", metadata: ["call.id": "\(id)", "error": "\(response.text ?? response.status)"])
                }
            }
        } catch {
            self.logger.warning("could not hang up the live calls", metadata: ["error": "\(error)"])
        }
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

    /// Pauses the campaign when abandoned calls pass the limit over the last 30 days (or since
    /// the last resume); the reason, when it did.
    func abandonRatePassed() -> String? {
        guard let rate = try? self.store.abandonRate(campaignID: self.campaignID, since: self.options.now().addingTimeInterval(-30 * 86_400)),
            AbandonRate.passes(abandoned: rate.abandoned, answered: rate.answered, limitPercent: self.campaign.abandonLimitPercent)
        else { return nil }
        let reason = "abandon rate \(rate.abandoned)/\(rate.answered) passed \(self.campaign.abandonLimitPercent)% over 30 days"
        self.logger.error("pausing the campaign", metadata: ["reason": "\(reason)"])
        try? self.store.setPaused(campaignID: self.campaignID, true, reason: reason)
        return reason
    }
}

/// When abandoned calls pass the campaign's limit.
enum AbandonRate {
    /// The share is taken over at least the smallest sample in which one abandoned call stays
    /// within the limit (34 answered calls at 3%): a single abandoned call early in a campaign is
    /// not yet a rate, while a second one (or an engine abandoning every call) pauses it.
    static func passes(abandoned: Int, answered: Int, limitPercent: Double) -> Bool {
        guard abandoned > 0 else { return false }
        let sample = limitPercent > 0 ? Int((100 / limitPercent).rounded(.up)) : 1
        return Double(abandoned) * 100 / Double(max(answered, sample)) > limitPercent
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
