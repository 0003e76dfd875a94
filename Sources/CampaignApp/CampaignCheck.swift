import AsteriskManager
import CampaignCore
import CampaignStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Speech

/// `cex campaign check`: everything a run needs, checked without dialling or storing.
/// The campaign file and template (already loaded with the session), the DNC files, every lead
/// row, the AMI login, the engine's address, the providers' keys, and how many leads could be
/// dialled now and in the next 24 hours, by callee timezone.
public struct CampaignCheck: Sendable {
    public enum Status: String, Sendable, Hashable, Encodable {
        case ok, warning, failed
    }

    public struct Item: Sendable, Hashable, Encodable {
        public var status: Status
        public var subject: String
        public var detail: String
    }

    /// Leads of one zone list that are waiting, and which of them could be dialled.
    public struct Dialable: Sendable, Hashable, Encodable {
        public var zones: String
        public var now: Int
        public var next24Hours: Int
    }

    public struct Report: Sendable {
        public var items: [Item] = []
        public var dialable: [Dialable] = []
        public var passed: Bool { !self.items.contains { $0.status == .failed } }
    }

    public var session: CampaignSession
    public var now: Date
    /// Overrides the campaign's AMI address and secret (tests).
    public var ami: (host: String, port: Int)?
    public var secret: String?
    public var timeout: Duration = .seconds(5)

    public init(session: CampaignSession, now: Date = Date()) {
        self.session = session
        self.now = now
    }

    public func run() async -> Report {
        var report = Report()
        let campaign = self.session.campaign
        report.items.append(
            Item(
                status: .ok, subject: "campaign",
                detail: "\(campaign.file): \(campaign.name), template \(campaign.template), window \(campaign.window.description) callee time"))

        // DNC: the store's list and the campaign's files, read but not added.
        var doNotCall: Set<String> = []
        do {
            doNotCall = try self.session.store.doNotCallNumbers()
            report.items.append(Item(status: .ok, subject: "do-not-call", detail: "\(doNotCall.count) numbers in the store"))
        } catch {
            report.items.append(Item(status: .failed, subject: "do-not-call", detail: "cannot read the store's list: \(error)"))
        }
        for file in campaign.dnc {
            do {
                let (numbers, bad) = try DoNotCallFile.read(path: file, defaultRegion: campaign.defaultCountry)
                doNotCall.formUnion(numbers.map(\.e164))
                let detail = "\(numbers.count) numbers" + (bad.isEmpty ? "" : ", \(bad.count) lines not numbers (first: line \(bad[0]))")
                report.items.append(Item(status: bad.isEmpty ? .ok : .warning, subject: file, detail: detail))
            } catch {
                report.items.append(Item(status: .failed, subject: file, detail: "\(error)"))
            }
        }

        // Leads: every row checked as an import would.
        var newLeads: [String: Int] = [:]
        let importer = LeadImporter(
            store: self.session.store, campaignID: self.session.campaignID, campaign: campaign, requiredVariables: self.session.requiredVariables)
        for file in campaign.leads {
            do {
                let check = try importer.check(file, doNotCall: doNotCall)
                let fresh = check.newLeadsByZones.values.reduce(0, +)
                newLeads.merge(check.newLeadsByZones, uniquingKeysWith: +)
                var detail = "\(fresh) new leads, \(check.unchanged) already in the campaign, \(check.rejected.count) rejected"
                if let first = check.rejected.first { detail += " (first: line \(first.line), \(first.field.isEmpty ? "row" : first.field): \(first.reason))" }
                report.items.append(Item(status: check.rejected.isEmpty ? .ok : .warning, subject: file, detail: detail))
            } catch {
                report.items.append(Item(status: .failed, subject: file, detail: "\(error)"))
            }
        }

        report.items.append(await self.checkAMI())
        report.items.append(await self.checkEngine())
        report.items.append(self.checkProviders())
        report.dialable = self.dialable(newLeads: newLeads)
        return report
    }

    /// Logs in to AMI and out again.
    func checkAMI() async -> Item {
        let campaign = self.session.campaign
        let host = self.ami?.host ?? campaign.ami.host
        let port = self.ami?.port ?? campaign.ami.port
        let subject = "AMI \(host):\(port)"
        let secret: String
        do {
            secret = try self.secret ?? SecretSource(environment: campaign.ami.secretEnvironment, file: campaign.ami.secretFile).read()
        } catch {
            return Item(status: .failed, subject: subject, detail: "\(error)")
        }
        var configuration = AMIClient.Configuration(host: host, port: port, username: campaign.ami.username, secret: secret)
        configuration.connectTimeout = self.timeout
        let client = AMIClient(configuration: configuration, logger: self.session.logger)
        let events = client.subscribe()
        let timeout = self.timeout
        return await withTaskGroup(of: Item?.self) { group in
            group.addTask {
                try? await client.run()
                return nil
            }
            group.addTask {
                for await event in events {
                    switch event {
                    case .connected:
                        return Item(status: .ok, subject: subject, detail: "login accepted for \(campaign.ami.username)")
                    case .disconnected(let error):
                        return Item(status: .failed, subject: subject, detail: "\(error)")
                    case .event:
                        continue
                    }
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return Item(status: .failed, subject: subject, detail: "no login within \(timeout)")
            }
            var result: Item?
            while result == nil, let next = await group.next() {
                result = next
            }
            group.cancelAll()
            return result ?? Item(status: .failed, subject: subject, detail: "the connection ended before the login")
        }
    }

    /// An embedded engine needs its port free; a shared one must accept a connection.
    func checkEngine() async -> Item {
        switch self.session.campaign.engine {
        case .embedded(let host, let port):
            let subject = "engine (embedded) \(host):\(port)"
            do {
                let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: host, port: port).get()
                try await channel.close()
                return Item(status: .ok, subject: subject, detail: "the port is free for the run's engine")
            } catch {
                return Item(status: .failed, subject: subject, detail: "cannot listen there (\(error)); is another cex running?")
            }
        case .shared(let host, let port):
            let subject = "engine (shared) \(host):\(port)"
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(Int64(self.timeout.seconds)))
                    .connect(host: host, port: port).get()
                try await channel.close()
                return Item(status: .ok, subject: subject, detail: "accepts connections")
            } catch {
                return Item(status: .failed, subject: subject, detail: "no connection (\(error)); is `cex engine serve` running?")
            }
        }
    }

    /// The providers the campaign names, with their keys in the environment (nothing is sent).
    func checkProviders(environment: [String: String] = ProcessInfo.processInfo.environment) -> Item {
        let settings = self.session.campaign.providers
        do {
            let providers = try EngineProviders.make(
                settings, environment: environment, offlineRecognizer: PocketSphinxRecognizer(configuration: .init(maximumSessions: 1)),
                offlineSynthesizer: EspeakSynthesizer(), logger: Logger(label: "cex.check"))
            var detail = providers.summary
            if settings.speech != .offline || settings.language != .scripted { detail += "; offline engines behind the cloud ones" }
            let fields = self.session.campaign.analysisFields.map(\.name)
            if !fields.isEmpty {
                detail += "; analysis fields \(fields.joined(separator: ", "))"
                if settings.language == .scripted { detail += " (the script cannot fill them: only `cex report analyze` will)" }
            }
            return Item(status: .ok, subject: "providers", detail: detail)
        } catch {
            return Item(status: .failed, subject: "providers", detail: "\(error)")
        }
    }

    /// Waiting leads (stored, plus the new ones an import would add) by zone list, with how
    /// many of them the window lets through now and within 24 hours.
    func dialable(newLeads: [String: Int]) -> [Dialable] {
        var waiting: [String: (now: Int, later: Int)] = [:]
        let later = self.now.addingTimeInterval(86_400)
        for (zones, dueNow, dueLater) in (try? self.session.store.waitingLeads(campaignID: self.session.campaignID, now: self.now, later: later)) ?? [] {
            waiting[zones, default: (0, 0)].now += dueNow
            waiting[zones, default: (0, 0)].later += dueLater
        }
        for (zones, count) in newLeads {
            waiting[zones, default: (0, 0)].now += count
            waiting[zones, default: (0, 0)].later += count
        }
        let window = self.session.campaign.window
        return waiting.map { zones, counts in
            let timeZones = zones.split(separator: "|").compactMap { TimeZone(identifier: String($0)) }
            let open = window.isOpen(at: self.now, in: timeZones)
            let opens = window.nextOpen(atOrAfter: self.now, in: timeZones).map { $0 < later } ?? false
            return Dialable(zones: zones, now: open ? counts.now : 0, next24Hours: opens ? counts.later : 0)
        }
        .sorted { ($0.next24Hours, $0.zones) > ($1.next24Hours, $1.zones) }
    }
}
