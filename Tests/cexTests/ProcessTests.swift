import CampaignCore
import Foundation
import GRDB
import Logging
import NIOCore
import PBXSimulator
import TestSupport
import Testing

@testable import CampaignApp

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The built `cex` binary, run as a child process.
struct CexProcess {
    static let binary: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("cex")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return repository.appendingPathComponent(".build/debug/cex")
    }()

    let process = Process()
    let output: URL

    init(_ arguments: [String], environment: [String: String] = [:], output: URL) throws {
        self.output = output
        self.process.executableURL = Self.binary
        self.process.arguments = arguments
        self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        self.process.standardOutput = handle
        self.process.standardError = handle
        try self.process.run()
    }

    /// Waits for the exit, polling (so the test's executor is never blocked); returns the status.
    /// A child still running at the limit is killed, and the error carries the end of its output.
    func exit(within limit: Duration = .seconds(180)) async throws -> Int32 {
        do {
            try await eventually(within: limit) { !self.process.isRunning }
        } catch {
            kill(self.process.processIdentifier, SIGKILL)
            throw StillRunning(output: String(self.text.suffix(4000)))
        }
        return self.process.terminationStatus
    }

    /// Kills the child if it still runs (a failed test must not leave it dialling).
    func stop() {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    struct StillRunning: Error, CustomStringConvertible {
        var output: String
        var description: String { "cex did not exit in time; its last output:\n\(self.output)" }
    }

    var text: String { (try? String(contentsOf: self.output, encoding: .utf8)) ?? "" }

    /// Runs to the end; the exit status and everything printed.
    static func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL) async throws -> (status: Int32, output: String) {
        let process = try CexProcess(arguments, environment: environment, output: directory.appendingPathComponent("out-\(UUID().uuidString).txt"))
        let status = try await process.exit(within: .seconds(60))
        return (status, process.text)
    }
}

/// A zone where it is now between 09:00 and 19:00 on any day: child processes dial on the real clock.
func zoneInsideTheWindowNow() -> String {
    let zones = [
        "America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "Europe/London", "Europe/Berlin", "Asia/Dubai", "Asia/Kolkata",
        "Asia/Bangkok", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "America/Sao_Paulo",
    ]
    return zones.first { zone in
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        return (9..<19).contains(calendar.component(.hour, from: Date()))
    }!
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ProcessTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cex-process-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    var store: String { self.directory.appendingPathComponent("cex.sqlite").path }

    func rows(_ sql: String) throws -> [Row] {
        try DatabaseQueue(path: self.store).read { db in try Row.fetchAll(db, sql: sql) }
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = self.directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func campaignFile(
        name: String = "crash", leads: String = "leads.csv", amiPort: Int = 5038, enginePort: Int = 9092, maxConcurrentCalls: Int = 3,
        extra: String = ""
    ) throws -> String {
        try self.write(
            "\(name).yaml",
            """
            name: \(name)
            leads: \(leads)
            template: \(repository.appendingPathComponent("templates/solar-assessment.yaml").path)
            caller_id: '"Bright Solar" <+12125550100>'
            ami: {host: 127.0.0.1, port: \(amiPort), username: cex}
            dial: PJSIP/{phone}@trunk
            answered: {context: ai-outbound, exten: s, priority: "1"}
            engine: {mode: embedded, address: "127.0.0.1:\(enginePort)"}
            max_concurrent_calls: \(maxConcurrentCalls)
            calls_per_second: 5
            ring_timeout: 15s
            window: {start: "09:00", end: "21:00"}
            \(extra)
            """)
    }

    /// The Asterisk stand-in for a child `cex`: every number in `phones` answers and is
    /// interested; the engine the stand-in connects answered calls to is the child's, on a free port.
    struct StandIn {
        let pbx: SimulatedAsterisk
        let amiPort: PortWaiter
        let enginePort: Int
        let secret: String
    }

    func standIn(phones: [String]) async throws -> StandIn {
        let zone = zoneInsideTheWindowNow()
        _ = try self.write("leads.csv", "phone,first_name,city,time_zone\n" + phones.map { "\($0),Ana,Springfield,\(zone)\n" }.joined())
        let interested = try #require(try await CampaignDemo.personas()["interested"])
        let enginePort = try await CampaignDemo.freePort()
        let amiPort = PortWaiter()
        let secret = UUID().uuidString
        let pbx = SimulatedAsterisk(
            configuration: .init(
                host: "127.0.0.1", port: 0, users: [.init(username: "cex", secret: secret)],
                contexts: ["ai-outbound": .init(engineHost: "127.0.0.1", enginePort: enginePort, runsAMD: false)],
                directory: Dictionary(uniqueKeysWithValues: phones.map { ($0, interested) }), defaultBehaviour: .unallocated,
                ringTime: .milliseconds(200), seed: 1, onListening: { amiPort.set($0.port) }),
            logger: Logger(label: "test"))
        return StandIn(pbx: pbx, amiPort: amiPort, enginePort: enginePort, secret: secret)
    }

    /// Polls the store until `count` answered calls are in conversation.
    func waitForCallsTalking(_ count: Int) async throws {
        try await eventually(within: .seconds(60)) {
            let talking = try? DatabaseQueue(path: self.store).read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM attempt WHERE answered_at IS NOT NULL AND outcome IS NULL")
            }
            return (talking ?? 0) >= count
        }
    }

    /// kill -9 in the middle of a campaign, then a restart: no lead is dialled twice, every
    /// attempt ends settled, and a second runner is refused while the first one lives.
    @Test func aRunnerKilledMidCampaignIsFollowedByOneThatNeverDialsALeadTwice() async throws {
        let phones = (1...6).map { "+1212555014\($0)" }
        let standIn = try await self.standIn(phones: phones)
        let (pbx, secret) = (standIn.pbx, standIn.secret)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            let file = try self.campaignFile(amiPort: try await standIn.amiPort.wait(), enginePort: standIn.enginePort)
            let arguments = ["campaign", "start", file, "--store", self.store, "--log-level", "info"]
            let first = try CexProcess(arguments, environment: ["CEX_AMI_SECRET": secret], output: self.directory.appendingPathComponent("first.txt"))
            defer { first.stop() }

            // Two calls in conversation, then the runner dies without a word.
            try await self.waitForCallsTalking(2)
            // Meanwhile a second runner (cron, say) is turned away.
            let second = try await CexProcess.run(arguments, environment: ["CEX_AMI_SECRET": secret], in: self.directory)
            #expect(second.status != 0)
            #expect(second.output.contains("campaign crash is being run by campaign start (pid \(first.process.processIdentifier)"), "\(second.output)")

            try await Task.sleep(for: .seconds(2))
            kill(first.process.processIdentifier, SIGKILL)
            _ = try await first.exit()
            let orphaned = try self.rows("SELECT id FROM attempt WHERE outcome IS NULL").map { $0["id"] as String }
            #expect(orphaned.count >= 2)
            let dialledBeforeTheCrash = Set(try self.rows("SELECT phone FROM attempt").map { $0["phone"] as String })

            // The restart reconciles the orphans through AMI and dials only the rest.
            let restart = try CexProcess(arguments, environment: ["CEX_AMI_SECRET": secret], output: self.directory.appendingPathComponent("restart.txt"))
            defer { restart.stop() }
            let status = try await restart.exit()
            #expect(status == 0, "\(restart.text)")
            group.cancelAll()

            let attempts = try self.rows("SELECT phone, outcome, abandoned FROM attempt")
            // One attempt per lead, all settled; the stand-in saw one call per number.
            #expect(attempts.count == 6)
            #expect(Set(attempts.map { $0["phone"] as String }) == Set(phones))
            #expect(attempts.allSatisfy { ($0["outcome"] as String?) != nil })
            let calls = Dictionary(grouping: pbx.reports, by: \.destination).mapValues(\.count)
            #expect(calls.count == 6 && calls.values.allSatisfy { $0 == 1 }, "\(calls)")
            // The calls the crash cut were not abandoned: the agent had spoken in time.
            let cut = try self.rows("SELECT outcome, abandoned FROM attempt WHERE id IN ('\(orphaned.joined(separator: "','"))')")
            #expect(cut.allSatisfy { !($0["abandoned"] as Bool) }, "\(cut)")
            // The leads first dialled after the restart finished their conversations.
            let later = try self.rows("SELECT phone, outcome FROM attempt").filter { !dialledBeforeTheCrash.contains($0["phone"] as String) }
            #expect(later.allSatisfy { ($0["outcome"] as String?) == "interested" }, "\(later)")
            // The killed run is on record as such.
            let runs = try self.rows("SELECT ending FROM run ORDER BY id").map { $0["ending"] as String? }
            #expect(runs.first??.contains("killed or crashed") == true, "\(runs)")
        }
    }

    /// SIGTERM mid-campaign: no new call is dialled, the live one talks to its end, and cex exits 0.
    @Test func aStopSignalLetsTheLiveCallFinishAndDialsNothingMore() async throws {
        let standIn = try await self.standIn(phones: (1...3).map { "+1212555015\($0)" })
        let pbx = standIn.pbx
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            let file = try self.campaignFile(
                name: "stop", amiPort: try await standIn.amiPort.wait(), enginePort: standIn.enginePort, maxConcurrentCalls: 1, extra: "drain: 5m")
            let runner = try CexProcess(
                ["campaign", "start", file, "--store", self.store, "--log-level", "info"], environment: ["CEX_AMI_SECRET": standIn.secret],
                output: self.directory.appendingPathComponent("stop.txt"))
            defer { runner.stop() }
            try await self.waitForCallsTalking(1)
            // Standard output is a file, as in cron: what is printed is there at once, not at exit.
            #expect(runner.text.contains("leads: "), "\(runner.text)")
            #expect(runner.text.contains(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* done 0\/3 \(0%\)/), "\(runner.text)")
            kill(runner.process.processIdentifier, SIGTERM)
            let status = try await runner.exit(within: .seconds(90))
            group.cancelAll()
            #expect(status == 0, "\(runner.text)")
            #expect(runner.text.contains("stop: stopped on request"), "\(runner.text)")
            let attempts = try self.rows("SELECT outcome FROM attempt")
            #expect(attempts.count == 1)
            #expect(attempts.first?["outcome"] as String? == "interested")
            #expect(pbx.reports.count == 1)
            let runs = try self.rows("SELECT ending FROM run").map { $0["ending"] as String? }
            #expect(runs == ["stopped on request"])
        }
    }

    /// SIGINT with a call that outlasts the drain time: the call is hung up through AMI and
    /// settled, and cex exits 130 soon after the drain time (not when the call would have ended).
    @Test func aCallStillLiveAfterTheDrainTimeIsHungUpAndSettledAndSIGINTExits130() async throws {
        let standIn = try await self.standIn(phones: ["+12125550161", "+12125550162"])
        let pbx = standIn.pbx
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            let file = try self.campaignFile(
                name: "drain", amiPort: try await standIn.amiPort.wait(), enginePort: standIn.enginePort, maxConcurrentCalls: 1, extra: "drain: 1s")
            let runner = try CexProcess(
                ["campaign", "start", file, "--store", self.store, "--log-level", "info"], environment: ["CEX_AMI_SECRET": standIn.secret],
                output: self.directory.appendingPathComponent("drain.txt"))
            defer { runner.stop() }
            try await self.waitForCallsTalking(1)
            let signalled = ContinuousClock.now
            kill(runner.process.processIdentifier, SIGINT)
            let status = try await runner.exit(within: .seconds(60))
            let took = signalled.duration(to: .now)
            group.cancelAll()
            #expect(status == 130, "\(runner.text)")
            #expect(took < .seconds(20), "exited \(took) after SIGINT with a 1 s drain: \(runner.text)")
            #expect(runner.text.contains("hanging up the live calls"), "\(runner.text)")
            let attempts = try self.rows("SELECT outcome FROM attempt")
            #expect(attempts.count == 1)
            #expect(attempts.first?["outcome"] as String? != nil, "the hung-up call is settled")
            #expect(pbx.reports.count == 1, "the call was hung up, not left to run")
        }
    }

    /// A second signal ends the run at once, whatever is live; the attempt is left for the next
    /// run to reconcile (never settled blind).
    @Test func aSecondSignalEndsTheRunAtOnce() async throws {
        let standIn = try await self.standIn(phones: ["+12125550171"])
        let pbx = standIn.pbx
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            let file = try self.campaignFile(
                name: "twice", amiPort: try await standIn.amiPort.wait(), enginePort: standIn.enginePort, maxConcurrentCalls: 1, extra: "drain: 5m")
            let runner = try CexProcess(
                ["campaign", "start", file, "--store", self.store, "--log-level", "info"], environment: ["CEX_AMI_SECRET": standIn.secret],
                output: self.directory.appendingPathComponent("twice.txt"))
            defer { runner.stop() }
            try await self.waitForCallsTalking(1)
            kill(runner.process.processIdentifier, SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            let signalled = ContinuousClock.now
            kill(runner.process.processIdentifier, SIGTERM)
            _ = try await runner.exit(within: .seconds(60))
            let took = signalled.duration(to: .now)
            group.cancelAll()
            #expect(took < .seconds(10), "exited \(took) after the second signal")
            #expect(runner.text.contains("second signal"), "\(runner.text)")
            #expect(try self.rows("SELECT count(*) AS n FROM attempt")[0]["n"] as Int == 1)
        }
    }

    /// The JSON object a command printed on standard output (the test's file also holds its log
    /// lines, which go to standard error).
    static func json(_ output: String) throws -> [String: Any]? {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.firstIndex(where: { $0.hasPrefix("{") }), let last = lines.lastIndex(where: { $0.hasPrefix("}") }) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(lines[first...last].joined(separator: "\n").utf8)) as? [String: Any]
    }

    /// Commands that only look store nothing: `campaign check` creates no store and no campaign
    /// row; `report export` and `campaign status` without a store say so and create none.
    @Test func lookingCommandsNeverCreateAStore() async throws {
        _ = try self.write("leads.csv", "phone,first_name,city\n+12125550160,Ana,Springfield\n")
        let file = try self.campaignFile(name: "look", amiPort: try await CampaignDemo.freePort())
        let check = try await CexProcess.run(["campaign", "check", file, "--store", self.store], environment: ["CEX_AMI_SECRET": "x"], in: self.directory)
        #expect(check.status == 1, "AMI is not there: \(check.output)")
        #expect(check.output.contains("dialable: "), "\(check.output)")
        #expect(!FileManager.default.fileExists(atPath: self.store), "check created the store")
        let export = try await CexProcess.run(["report", "export", "--campaign", "look", "--store", self.store], in: self.directory)
        #expect(export.status == 66, "\(export.output)")
        #expect(export.output.contains("no store at"), "\(export.output)")
        let noStore = try await CexProcess.run(["campaign", "status", file, "--store", self.store], in: self.directory)
        #expect(noStore.status == 66, "\(noStore.output)")
        #expect(!FileManager.default.fileExists(atPath: self.store))
        // A second file claiming the same campaign name is refused, naming both files.
        let imported = try await CexProcess.run(["leads", "import", file, "--store", self.store], in: self.directory)
        #expect(imported.status == 0, "\(imported.output)")
        let copy = try self.write("look-copy.yaml", try String(contentsOfFile: file, encoding: .utf8))
        let clash = try await CexProcess.run(["leads", "import", copy, "--store", self.store], in: self.directory)
        #expect(clash.status == 65, "\(clash.output)")
        #expect(clash.output.contains("look-copy.yaml") && clash.output.contains("look.yaml"), "\(clash.output)")
        let checkClash = try await CexProcess.run(["campaign", "check", copy, "--store", self.store], environment: ["CEX_AMI_SECRET": "x"], in: self.directory)
        #expect(checkClash.status != 0 && checkClash.output.contains("already used by"), "\(checkClash.output)")
        // A demo that cannot find its campaign leaves no folder or store behind.
        let demoOut = self.directory.appendingPathComponent("demo-out").path
        let demo = try await CexProcess.run(["demo", "--campaign", self.directory.appendingPathComponent("none.yaml").path, "--out", demoOut], in: self.directory)
        #expect(demo.status == 66 && demo.output.contains("no demo campaign"), "\(demo.output)")
        #expect(!FileManager.default.fileExists(atPath: demoOut))
        // One way to name a campaign everywhere, and JSON for scripts.
        let byName = try await CexProcess.run(["campaign", "status", "--campaign", "look", "--store", self.store, "--json"], in: self.directory)
        #expect(byName.status == 0, "\(byName.output)")
        let status = try Self.json(byName.output)
        #expect(status?["campaign"] as? String == "look" && status?["paused"] as? Bool == false, "\(byName.output)")
        #expect(((status?["funnel"] as? [String: Any])?["counts"] as? [String: Any])?["leads"] as? Int == 1, "\(byName.output)")
        let both = try await CexProcess.run(["campaign", "status", file, "--campaign", "look", "--store", self.store], in: self.directory)
        #expect(both.status == 64, "\(both.output)")
        let exportByFile = try await CexProcess.run(["report", "export", file, "--store", self.store, "--format", "json"], in: self.directory)
        #expect(exportByFile.status == 0 && exportByFile.output.contains("\"campaign\""), "\(exportByFile.output)")
        let checkJSON = try await CexProcess.run(["campaign", "check", file, "--store", self.store, "--json"], environment: ["CEX_AMI_SECRET": "x"], in: self.directory)
        let report = try Self.json(checkJSON.output)
        #expect(report?["passed"] as? Bool == false && (report?["items"] as? [Any])?.isEmpty == false, "\(checkJSON.output)")
    }

    /// Broken campaign files and lead lists, through the CLI: a message with file, line and
    /// field; a non-zero exit; the store's leads, imports, attempts and DNC list untouched.
    @Test(arguments: [
        ("yaml-unknown-key", "name: bad\nleads: good.csv\ntemplate: T\ncaller_id: x\nami: {username: cex}\ndail: PJSIP/{phone}@t\n", "", "bad.yaml:6"),
        ("yaml-secret", "name: bad\nleads: good.csv\ntemplate: T\ncaller_id: x\nami: {username: cex, secret: hunter2}\ndial: PJSIP/{phone}@t\n", "", "bad.yaml:5"),
        ("yaml-window", "name: bad\nleads: good.csv\ntemplate: T\ncaller_id: x\nami: {username: cex}\ndial: PJSIP/{phone}@t\nwindow: {start: \"07:00\", end: \"21:00\"}\n", "", "bad.yaml:7"),
        ("yaml-syntax", "name: bad\nleads: [good.csv\ntemplate: T\n", "", "bad.yaml:"),
        ("csv-not-utf8", "", "phone,first_name,city\n+12125550150,Ana,X\n+12125550151,B\u{FFFD},Y\n", "bad.csv:3"),
        ("csv-no-phone", "", "mobile_nr,first_name,city\n+12125550150,Ana,X\n", "bad.csv:1"),
        ("csv-unterminated-quote", "", "phone,first_name,city\n+12125550150,Ana,X\n+12125550151,\"Ben,Y\n+12125550152,Cy,Z\n", "bad.csv:3"),
        ("csv-duplicate-column", "", "phone,first_name,First Name,city\n+12125550150,Ana,Ana,X\n", "bad.csv:1"),
        ("csv-empty", "", "", "bad.csv:1"),
        ("csv-missing-variable", "", "phone,city\n+12125550150,X\n", "{{first_name}}"),
    ])
    func aBrokenFileFailsWithItsPlaceAndChangesNothing(name: String, yaml: String, csv: String, expected: String) async throws {
        // A store with a campaign already in it.
        _ = try self.write("good.csv", "phone,first_name,city\n+12125550160,Ana,Springfield\n+12125550161,Ben,Springfield\n")
        let good = try self.campaignFile(name: "good", leads: "good.csv")
        let imported = try await CexProcess.run(["leads", "import", good, "--store", self.store], in: self.directory)
        #expect(imported.status == 0, "\(imported.output)")
        _ = try await CexProcess.run(["dnc", "add", "+12125550199", "--store", self.store], in: self.directory)
        let before = try self.snapshot()

        let template = repository.appendingPathComponent("templates/solar-assessment.yaml").path
        let file: String
        if yaml.isEmpty {
            var bytes = Array(csv.utf8)
            if name == "csv-not-utf8" { bytes = Array(csv.replacingOccurrences(of: "\u{FFFD}", with: "\u{1}").utf8).map { $0 == 1 ? 0xFF : $0 } }
            try Data(bytes).write(to: self.directory.appendingPathComponent("bad.csv"))
            file = try self.campaignFile(name: "good", leads: "bad.csv")
        } else {
            file = try self.write("bad.yaml", yaml.replacingOccurrences(of: "template: T", with: "template: \(template)"))
        }
        let result = try await CexProcess.run(["leads", "import", file, "--store", self.store], in: self.directory)
        #expect(result.status == 65, "\(name): bad data exits EX_DATAERR: \(result.output)")
        #expect(result.output.contains(expected), "\(name): \(result.output)")
        #expect(!result.output.contains("hunter2"))
        #expect(try self.snapshot() == before, "\(name)")
    }

    /// Leads, imports, attempts and the DNC list, as a comparable value.
    func snapshot() throws -> [String] {
        try ["lead", "lead_import", "attempt", "dnc"].flatMap { table in
            try self.rows("SELECT * FROM \(table) ORDER BY rowid").map { row in "\(table): \(row)" }
        }
    }
}
