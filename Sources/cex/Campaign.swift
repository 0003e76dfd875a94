import ArgumentParser
import AsteriskManager
import CampaignApp
import CampaignCore
import CampaignStore
import ChatCompletions
import Conversation
import Foundation
import Logging
import Reports
import UnixSignals

/// Where the campaign store lives.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The SQLite store (default: $CEX_STORE, else ./cex.sqlite).")
    var store: String?

    var path: String { self.store ?? ProcessInfo.processInfo.environment["CEX_STORE"] ?? "cex.sqlite" }

    func open() throws -> CampaignStore {
        do {
            return try CampaignStore(path: self.path)
        } catch {
            throw CommandFailure("cannot open the store \(self.path): \(error)")
        }
    }

    /// The store, for commands that only look at what runs left: a missing store is an error,
    /// never created empty.
    func openExisting() throws -> CampaignStore {
        guard FileManager.default.fileExists(atPath: self.path) else {
            throw CommandFailure(
                "no store at \(self.path): pass --store PATH (or set CEX_STORE) to the store a campaign ran with", exitCode: CommandFailure.noInput)
        }
        return try self.open()
    }

    /// The store as it is, or an empty one in memory when there is none: for `campaign check`,
    /// which stores nothing.
    func openForChecking() throws -> CampaignStore {
        guard FileManager.default.fileExists(atPath: self.path) else { return try CampaignStore(inMemoryAt: self.path) }
        return try self.open()
    }
}

/// A campaign named by its file or by `--campaign NAME`: every command takes either.
struct CampaignTarget: ParsableArguments {
    @Argument(help: "The campaign file, e.g. campaigns/spring.yaml (or --campaign NAME).") var file: String?
    @Option(name: .long, help: "The campaign's name, instead of its file.") var campaign: String?

    func validate() throws {
        guard (self.file == nil) != (self.campaign == nil) else {
            throw ValidationError("name the campaign by its file or by --campaign NAME, one of them")
        }
    }

    /// The campaign's name: given, or read from its file.
    func name() throws -> String {
        if let campaign { return campaign }
        return try loadCampaignFile(self.file!).name
    }

    /// The campaign's id in the store; a name the store does not have is an error.
    func id(in store: CampaignStore, register: Bool = false) throws -> Int64 {
        if let file, register { return try store.campaignID(try loadCampaignFile(file)) }
        let name = try self.name()
        guard let id = try store.campaignID(named: name) else { throw CommandFailure("no campaign named \(name) in the store \(store.path)") }
        return id
    }
}

/// Prints a value as JSON (sorted keys, ISO 8601 dates): `--json` output.
func sayJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    say(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// An error the CLI prints as is, exiting with its code (sysexits where one fits).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32
    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }

    /// EX_DATAERR: the input data was wrong.
    static let badData: Int32 = 65
    /// EX_NOINPUT: a file the command needs is not there.
    static let noInput: Int32 = 66
    /// EX_UNAVAILABLE: a service (Asterisk) could not be reached.
    static let unavailable: Int32 = 69
    /// EX_TEMPFAIL: try again later (the disk is full, the store is busy).
    static let tryLater: Int32 = 75
    /// 128 + SIGINT.
    static let interrupted: Int32 = 130
}

extension Cex {
    struct CampaignCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "campaign",
            abstract: "Run, check and control campaigns.",
            subcommands: [Start.self, Run.self, Check.self, Status.self, Pause.self, Resume.self]
        )
    }
}

/// Loads a campaign, turning every known error into a one-line message.
func loadSession(_ file: String, store: CampaignStore, logger: Logger, register: Bool = true) throws -> CampaignSession {
    do {
        return try CampaignSession(campaignFile: file, store: store, logger: logger, register: register)
    } catch let error as CampaignFileError {
        throw CommandFailure("\(error)", exitCode: CommandFailure.badData)
    } catch {
        throw CommandFailure("\(file): \(error)", exitCode: CommandFailure.badData)
    }
}

/// The campaign's run lock, or a message naming the process that holds it.
func takeRunLock(_ session: CampaignSession, command: String) throws -> RunLock {
    do {
        return try session.store.lockRun(campaignID: session.campaignID, campaign: session.campaign.name, command: command)
    } catch let busy as RunLock.Busy {
        throw CommandFailure("\(busy); it must end first")
    }
}

extension RunLock {
    /// Runs `body` holding the lock, then releases it with how the run ended: the result's
    /// description, or the error.
    @discardableResult
    func holding<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            self.release(ending: "\(result)")
            return result
        } catch {
            self.release(ending: "error: \(error)")
            throw error
        }
    }
}

func importAndReport(_ session: CampaignSession) throws {
    let dnc = try session.loadDoNotCallFiles()
    if dnc.added > 0 { say("do-not-call: \(dnc.added) new numbers from the campaign's lists") }
    for (file, lines) in dnc.skipped {
        say("do-not-call: \(file): \(lines.count) lines are not numbers (first: line \(lines[0]))")
    }
    do {
        for report in try session.importLeads() {
            let c = report.counts
            var line = "leads: \(report.file): \(c.imported) imported, \(c.unchanged) already in the campaign, \(c.rejected) rejected"
            if let rejects = report.rejectsFile { line += " (reasons in \(rejects))" }
            say(line)
        }
    } catch let error as LeadImporter.ImportError {
        throw CommandFailure("\(error) (nothing from this file was imported)", exitCode: error.passingFault == nil ? CommandFailure.badData : CommandFailure.tryLater)
    } catch {
        throw storeFailure(error)
    }
}

/// A store write that failed for a reason that passes (a full disk) as exit 75, with the reason;
/// any other error as it is.
func storeFailure(_ error: any Error) -> any Error {
    guard let reason = StoreError.passingFault(error) else { return error }
    return CommandFailure("\(reason): nothing was lost; run again once it is fixed", exitCode: CommandFailure.tryLater)
}

/// The failure a run's ending is, if it is one: the store could not be written (exit 75).
func failure(of summary: CampaignRunner.Summary, in campaign: String) -> CommandFailure? {
    guard case .storeFailed = summary.ending else { return nil }
    return CommandFailure("\(campaign): \(summary)", exitCode: CommandFailure.tryLater)
}

/// Dials, with the progress line below the log on a terminal and timestamped lines otherwise.
func dial(_ session: CampaignSession) async throws -> CampaignRunner.Summary {
    var options = CampaignSession.RunOptions()
    let terminal = Terminal.shared
    terminal.begin()
    options.runner.onProgress = { terminal.show($0) }
    defer { terminal.finish() }
    do {
        return try await session.dial(options: options)
    } catch let error as SecretSource.MissingSecret {
        throw CommandFailure("AMI secret: \(error.description)")
    } catch let error as AMIClientError where error.isUnavailable {
        throw CommandFailure("\(session.campaign.name): \(error)", exitCode: CommandFailure.unavailable)
    } catch {
        throw storeFailure(error)
    }
}

extension Cex.CampaignCommand {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check and import a campaign, then dial until it is done or its window closes.",
            discussion: """
                Validates the campaign file and template, loads the DNC files, imports the leads (rejected rows \
                go to LEADS.rejects.csv), and dials. On a terminal a progress line shows dialled, ringing, \
                talking and finished calls with their outcomes. SIGINT or SIGTERM stops dialling; live calls \
                finish, then cex exits.
                """
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @Argument(help: "The campaign file, e.g. campaigns/spring.yaml.") var file: String

        func run() async throws {
            self.global.bootstrapLogging()
            let logger = Logger(label: "cex.campaign")
            let store = try self.store.open()
            let session = try loadSession(self.file, store: store, logger: logger)
            let summary = try await takeRunLock(session, command: "campaign start").holding {
                try importAndReport(session)
                if let reason = try store.pauseReason(campaignID: session.campaignID) {
                    throw CommandFailure("campaign \(session.campaign.name) is paused (\(reason)); `cex campaign resume \(self.file)` to go on")
                }
                return try await dial(session)
            }
            if let failure = failure(of: summary, in: session.campaign.name) { throw failure }
            say("\(session.campaign.name): \(summary)")
            say(Funnel(try store.funnel(campaignID: session.campaignID)).line)
            if summary.signal == .sigint { throw ExitCode(CommandFailure.interrupted) }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The cron entry: resume due work for each campaign, then exit.",
            discussion: """
                For each campaign file: import new leads, then dial what is due now. Exits 0 when the work \
                is done, nothing is due, or the calling window is closed; non-zero with a message when a \
                campaign cannot run. A campaign that another process is dialling is skipped.

                crontab: */5 * * * * cd /srv/cex && cex campaign run campaigns/*.yaml >> log/cron.log 2>&1
                """
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @Argument(help: "Campaign files.") var files: [String]

        func run() async throws {
            self.global.bootstrapLogging()
            let logger = Logger(label: "cex.campaign")
            let store = try self.store.open()
            var failures: [Int32] = []
            for file in self.files {
                do {
                    let session = try loadSession(file, store: store, logger: logger)
                    if let reason = try store.pauseReason(campaignID: session.campaignID) {
                        say("\(session.campaign.name): paused (\(reason)), skipped")
                        continue
                    }
                    let lock: RunLock
                    do {
                        lock = try store.lockRun(campaignID: session.campaignID, campaign: session.campaign.name, command: "campaign run")
                    } catch let busy as RunLock.Busy {
                        say("\(busy), skipped")
                        continue
                    }
                    let summary = try await lock.holding {
                        try importAndReport(session)
                        return try await dial(session)
                    }
                    if let failure = failure(of: summary, in: session.campaign.name) { throw failure }
                    say("\(session.campaign.name): \(summary)")
                    // A stop request covers the campaigns not started yet too.
                    if let signal = summary.signal {
                        if signal == .sigint { throw ExitCode(CommandFailure.interrupted) }
                        break
                    }
                } catch let exit as ExitCode {
                    throw exit
                } catch {
                    failures.append((error as? CommandFailure)?.exitCode ?? 1)
                    say("error: \(error)")
                }
            }
            // Asterisk unreachable wins: cron mail should say what to fix first.
            if let code = failures.contains(CommandFailure.unavailable) ? CommandFailure.unavailable : failures.max() {
                throw ExitCode(code)
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Preflight a campaign without dialling or storing anything.",
            discussion: """
                Checks the campaign file and template, reads the DNC files, checks every lead row as an import \
                would, logs in to AMI, checks the engine's address, and counts the leads dialable now and in \
                the next 24 hours by callee timezone. Exits non-zero when anything would stop a run.
                """
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @Argument(help: "The campaign file.") var file: String
        @Flag(help: "Print the report as JSON.") var json = false

        struct Output: Encodable {
            var campaign: String
            var passed: Bool
            var items: [CampaignCheck.Item]
            var dialable: [CampaignCheck.Dialable]
        }

        func run() async throws {
            self.global.bootstrapLogging()
            let store = try self.store.openForChecking()
            let session = try loadSession(self.file, store: store, logger: Logger(label: "cex.check"), register: false)
            let report = await CampaignCheck(session: session).run()
            if self.json {
                try sayJSON(Output(campaign: session.campaign.name, passed: report.passed, items: report.items, dialable: report.dialable))
            } else {
                for item in report.items {
                    say("\(item.status.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(item.subject): \(item.detail)")
                }
                let now = report.dialable.reduce(0) { $0 + $1.now }
                let later = report.dialable.reduce(0) { $0 + $1.next24Hours }
                say("dialable: \(now) now, \(later) within 24 h")
                for zone in report.dialable {
                    say("  \(zone.zones.replacingOccurrences(of: "|", with: " + ")): \(zone.now) now, \(zone.next24Hours) within 24 h")
                }
            }
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a campaign's funnel, live calls and pause state.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var target: CampaignTarget
        @Flag(help: "Print the status as JSON.") var json = false

        struct Output: Encodable {
            var campaign: String
            var paused: Bool
            var pauseReason: String?
            var runningBy: String?
            var lastRun: String?
            var lastRunEnding: String?
            var liveAttempts: Int
            var funnel: Funnel
        }

        func run() async throws {
            self.global.bootstrapLogging()
            let store = try self.store.openExisting()
            let name = try self.target.name()
            guard let id = try store.campaignID(named: name) else {
                throw CommandFailure("campaign \(name) has never run with the store \(self.store.path)")
            }
            let reason = try store.pauseReason(campaignID: id)
            let holder = try store.currentRun(campaignID: id)
            let last = holder == nil ? try store.lastRun(campaignID: id) : nil
            let live = try store.liveAttemptCount(campaignID: id)
            let funnel = Funnel(try store.funnel(campaignID: id))
            if self.json {
                try sayJSON(
                    Output(
                        campaign: name, paused: reason != nil, pauseReason: reason, runningBy: holder.map { "\($0)" }, lastRun: last.map { "\($0.holder)" },
                        lastRunEnding: last?.ending, liveAttempts: live, funnel: funnel))
                return
            }
            say("\(name): \(reason.map { "paused (\($0))" } ?? "not paused")")
            if let holder {
                say("being run by \(holder)")
            } else if let last {
                say("last run: \(last.holder), \(last.ending ?? "ended")")
            }
            say("live attempts: \(live)")
            say(funnel.line)
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a campaign: runners stop dialling it; live calls finish.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var target: CampaignTarget
        @Option(help: "Why, for `campaign status`.") var reason = "paused by hand"

        func run() async throws {
            self.global.bootstrapLogging()
            let store = try self.store.open()
            try store.setPaused(campaignID: try self.target.id(in: store, register: true), true, reason: self.reason)
            say("paused")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a paused campaign.", discussion: "The abandon rate is counted afresh from the resume.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var target: CampaignTarget

        func run() async throws {
            self.global.bootstrapLogging()
            let store = try self.store.open()
            try store.setPaused(campaignID: try self.target.id(in: store, register: true), false, reason: nil)
            say("resumed")
        }
    }
}

func loadCampaignFile(_ file: String) throws -> Campaign {
    do {
        return try CampaignFile.load(path: file)
    } catch {
        throw CommandFailure("\(error)", exitCode: CommandFailure.badData)
    }
}

extension Cex {
    struct Leads: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lead lists.", subcommands: [Import.self])

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Import a campaign's lead files without dialling.",
                discussion: "Each file is imported whole or not at all; rejected rows go to LEADS.rejects.csv with line and reason.")
            @OptionGroup var global: GlobalOptions
            @OptionGroup var store: StoreOptions
            @Argument(help: "The campaign file.") var file: String

            func run() async throws {
                self.global.bootstrapLogging()
                let store = try self.store.open()
                let session = try loadSession(self.file, store: store, logger: Logger(label: "cex.leads"))
                try await takeRunLock(session, command: "leads import").holding {
                    try importAndReport(session)
                    return "leads imported"
                }
            }
        }
    }

    struct DNC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dnc", abstract: "The do-not-call list.", subcommands: [Add.self, Import.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add numbers to the do-not-call list.")
            @OptionGroup var global: GlobalOptions
            @OptionGroup var store: StoreOptions
            @Option(help: "Region for numbers written without a country code.") var country = "US"
            @Argument(help: "Numbers.") var numbers: [String]

            func run() async throws {
                let parser = try PhoneNumberParser(defaultRegion: self.country)
                var parsed: [PhoneNumber] = []
                for (index, number) in self.numbers.enumerated() {
                    do {
                        parsed.append(try parser.parse(number))
                    } catch {
                        throw CommandFailure("number \(index + 1): \(error)")
                    }
                }
                let added = try self.store.open().addDoNotCall(parsed, source: "manual")
                say("\(added) added, \(parsed.count - added) already listed")
            }
        }

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Import a do-not-call file (one number per line, or a CSV with the number first).")
            @OptionGroup var global: GlobalOptions
            @OptionGroup var store: StoreOptions
            @Option(help: "Region for numbers written without a country code.") var country = "US"
            @Argument(help: "The file.") var file: String

            func run() async throws {
                let (numbers, bad) = try DoNotCallFile.read(path: self.file, defaultRegion: self.country)
                let added = try self.store.open().addDoNotCall(numbers, source: "file \(URL(fileURLWithPath: self.file).lastPathComponent)")
                say("\(added) added, \(numbers.count - added) already listed, \(bad.count) lines not numbers\(bad.first.map { " (first: line \($0))" } ?? "")")
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reports.", subcommands: [Export.self, Analyze.self])

        struct Analyze: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run the model's post-call analysis again over a campaign's stored calls.",
                discussion: """
                    Uses OPENAI_API_KEY and OPENAI_BASE_URL, and the campaign's llm_model (else OPENAI_MODEL, else gpt-4o). \
                    Each call gets sentiment, objective, motive, objections, callback time, summary and the campaign's \
                    analysis_fields anew; its outcome stays. \
                    Exits 1 when any call could not be analysed (it keeps its analysis).
                    """)
            @OptionGroup var global: GlobalOptions
            @OptionGroup var store: StoreOptions
            @OptionGroup var target: CampaignTarget
            @Option(help: "Only calls last written at or after this date (YYYY-MM-DD, UTC) or time (ISO 8601).") var since: String?

            /// `--since` as a date: an ISO 8601 time, or a day (UTC).
            func date(_ text: String) -> Date? {
                if let date = ISO8601DateFormatter().date(from: text) { return date }
                let day = ISO8601DateFormatter()
                day.formatOptions = [.withFullDate]
                return day.date(from: text)
            }

            func validate() throws {
                if let text = self.since, self.date(text) == nil { throw ValidationError("--since takes YYYY-MM-DD or an ISO 8601 time") }
            }

            func run() async throws {
                self.global.bootstrapLogging()
                let logger = Logger(label: "cex.report")
                let store = try self.store.openExisting()
                let name = try self.target.name()
                guard let id = try store.campaignID(named: name), let files = try store.campaignFiles(campaignID: id) else {
                    throw CommandFailure("no campaign named \(name) in \(self.store.path)")
                }
                let template: PitchTemplate
                do {
                    template = try PitchTemplate.load(path: files.template)
                } catch {
                    throw CommandFailure("\(error)")
                }
                // The campaign file's model settings and analysis fields, when the file is still there.
                let campaign = (try? CampaignFile.load(path: files.file)).flatMap { $0.name == name ? $0 : nil }
                if let campaign { _ = try store.campaignID(campaign) }
                var client: ChatCompletionsClient
                do {
                    client = try EngineProviders.chatClient(
                        campaign?.providers ?? ProviderSettings(), environment: ProcessInfo.processInfo.environment, logger: logger)
                } catch {
                    throw CommandFailure("\(error)")
                }
                client.timeouts = ChatTimeouts(firstToken: .seconds(20), deadline: .seconds(60))
                let result = try await CallAnalysisRerun.run(
                    store: store, campaignID: id,
                    analyzer: LLMAnalyzer(
                        template: template, client: client, customFields: AnalysisField.descriptions(try store.analysisFields(campaignID: id))),
                    since: self.since.flatMap(self.date),
                    logger: logger)
                say("\(result.analysed) calls analysed with \(client.endpoint.model), \(result.failed) failed")
                if result.failed > 0 { throw ExitCode(1) }
            }
        }

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "One row per lead, as CSV or JSON (with the campaign funnel).",
                discussion: "CSV cells a spreadsheet would run as formulas, phone numbers included, start with an apostrophe.")
            @OptionGroup var global: GlobalOptions
            @OptionGroup var store: StoreOptions
            @OptionGroup var target: CampaignTarget
            @Option(help: "csv or json.") var format: String = "csv"
            @Option(help: "A file (replaced whole once written), or a folder to write <campaign>.<format> into; standard output when left out.") var out: String?

            func validate() throws {
                guard ReportExporter.Format(rawValue: self.format) != nil else { throw ValidationError("--format must be csv or json") }
            }

            func run() async throws {
                let store = try self.store.openExisting()
                self.global.bootstrapLogging()
                let name = try self.target.name()
                guard let id = try store.campaignID(named: name) else {
                    throw CommandFailure("no campaign named \(name) in \(self.store.path)")
                }
                let format = ReportExporter.Format(rawValue: self.format)!
                let (rows, path) = try ReportOutput.write(to: self.out, campaign: name, format: self.format) { handle in
                    try ReportExporter.export(store: store, campaignID: id, campaign: name, format: format, to: handle)
                }
                if let path { say("\(rows) leads written to \(path)") }
            }
        }
    }
}
