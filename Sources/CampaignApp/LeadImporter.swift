import CampaignCore
import CampaignStore
import Foundation

/// Imports lead files into the store: reads the CSV, checks each row (number, required
/// variables, timezone, duplicates, do-not-call), and stores every good row of a file in one
/// transaction. Parsing runs on its own thread while the store inserts, so the two overlap.
/// Rejected rows go to `<file>.rejects.csv` beside the input with their line and reason.
public struct LeadImporter: Sendable {
    public var store: CampaignStore
    public var campaignID: Int64
    public var campaign: Campaign
    /// Template variables every lead must have (not counting those the template fills itself).
    public var requiredVariables: Set<String>

    public init(store: CampaignStore, campaignID: Int64, campaign: Campaign, requiredVariables: Set<String>) {
        self.store = store
        self.campaignID = campaignID
        self.campaign = campaign
        self.requiredVariables = requiredVariables
    }

    public struct Report: Sendable, Hashable {
        public var file: String
        public var counts: CampaignStore.ImportCounts
        /// Where the rejected rows were written, when there were any.
        public var rejectsFile: String?
    }

    /// A file that could not be imported at all; nothing of it was stored.
    public struct ImportError: Error, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var message: String
        /// The store could not take the leads for a reason that passes (a full disk): try later.
        public var passingFault: String?
        public var description: String {
            "\(self.file)\(self.line.map { ":\($0)" } ?? ""): \(self.message)"
        }
    }

    public func importAll() throws -> [Report] {
        try self.campaign.leads.map(self.importFile)
    }

    /// A lead file read and its header checked, ready for its rows.
    struct OpenedFile {
        var bytes: [UInt8]
        var reader: CSVReader
        var validator: LeadValidator
    }

    /// Reads the file and checks its header against the campaign and template; rows not yet read.
    func open(_ path: String, doNotCall: Set<String>? = nil) throws -> OpenedFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ImportError(file: path, line: nil, message: "cannot read the file") }
        let bytes = [UInt8](data)
        if let line = Self.firstLineNotUTF8(bytes) {
            throw ImportError(file: path, line: line, message: "is not UTF-8 text (save the sheet as \"CSV UTF-8\")")
        }
        var reader = CSVReader(bytes: bytes)
        let header: CSVRecord
        do {
            guard let first = try reader.next() else { throw ImportError(file: path, line: 1, message: "is empty: no header row") }
            header = first
        } catch let error as CSVError {
            throw ImportError(file: path, line: error.line, message: error.message)
        }
        do {
            let columns = try LeadColumns(header: header.strings(in: bytes), overrides: self.campaign.columns)
            let validator = try LeadValidator(
                columns: columns, parser: try PhoneNumberParser(defaultRegion: self.campaign.defaultCountry),
                defaultTimeZone: self.campaign.defaultTimeZone, requiredVariables: self.requiredVariables,
                doNotCall: try doNotCall ?? self.store.doNotCallNumbers(), existing: try self.store.phones(campaignID: self.campaignID))
            return OpenedFile(bytes: bytes, reader: reader, validator: validator)
        } catch let error as LeadFileError {
            throw ImportError(file: path, line: error.line, message: error.message)
        }
    }

    /// What an import of the file would do, without storing anything: the new leads' zone
    /// lists with their counts, the rows already in the campaign, and the rejected rows.
    public struct FileCheck: Sendable, Hashable {
        public var file: String
        public var newLeadsByZones: [String: Int] = [:]
        public var unchanged = 0
        public var rejected: [RejectedLead] = []
    }

    /// Checks every row of a lead file as an import would; stores nothing.
    /// `doNotCall`: the numbers to suppress (the store's list when nil).
    public func check(_ path: String, doNotCall: Set<String>? = nil) throws -> FileCheck {
        var file = try self.open(path, doNotCall: doNotCall)
        var check = FileCheck(file: path)
        do {
            while let record = try file.reader.next() {
                switch file.validator.check(record, in: file.bytes) {
                case .lead(let lead): check.newLeadsByZones[lead.timeZones, default: 0] += 1
                case .rejected(let rejection): check.rejected.append(rejection)
                case .unchanged: check.unchanged += 1
                }
            }
        } catch {
            throw ImportError(file: path, line: error.line, message: error.message)
        }
        return check
    }

    public func importFile(_ path: String) throws -> Report {
        let opened = try self.open(path)
        let (bytes, reader, validator) = (opened.bytes, opened.reader, opened.validator)

        let queue = BatchQueue(capacity: 8)
        let producer = Producer(reader: reader, validator: validator, queue: queue)
        let thread = Thread { producer.run() }
        thread.stackSize = 1 << 20
        thread.start()
        let counts: CampaignStore.ImportCounts
        do {
            counts = try self.store.importLeads(
                campaignID: self.campaignID, file: path, header: validator.columns.header, bytes: bytes, expectedRows: bytes.count / 64,
                next: { try queue.pop() }, counts: { producer.counts })
        } catch let error as CSVError {
            queue.cancel()
            producer.finished.wait()
            throw ImportError(file: path, line: error.line, message: error.message)
        } catch {
            queue.cancel()
            producer.finished.wait()
            throw ImportError(file: path, line: nil, message: "\(error)", passingFault: StoreError.passingFault(error))
        }
        producer.finished.wait()

        let rejectsPath = Self.rejectsPath(for: path)
        if producer.rejected.isEmpty {
            try? FileManager.default.removeItem(atPath: rejectsPath)
            return Report(file: path, counts: counts, rejectsFile: nil)
        }
        try self.writeRejects(producer.rejected, header: validator.columns.header, bytes: bytes, to: rejectsPath)
        return Report(file: path, counts: counts, rejectsFile: rejectsPath)
    }

    public static func rejectsPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().path + ".rejects.csv"
    }

    func writeRejects(_ rejected: [(RejectedLead, CSVRecord)], header: [String], bytes: [UInt8], to path: String) throws {
        let writer = CSVWriter()
        var text = writer.record(["line", "field", "reason"] + header)
        for (rejection, record) in rejected {
            text += writer.record(["\(rejection.line)", rejection.field, rejection.reason] + record.strings(in: bytes))
        }
        do {
            _ = try ReportOutput.write(to: path, campaign: "", format: "csv", what: "the rejects file") { handle in
                try handle.write(contentsOf: Data(text.utf8))
            }
        } catch let failure as ReportOutput.Failure {
            let reason = failure.description.split(separator: ": ").last.map(String.init) ?? "the write failed"
            throw ImportError(file: path, line: nil, message: "cannot write the rejects file: \(reason)")
        }
    }

    /// nil when the whole file is UTF-8; else the first line that is not. ASCII is skipped eight
    /// bytes at a time and only lines with other bytes are decoded: a line break never stands
    /// inside a UTF-8 sequence, so the file is UTF-8 when each of its lines is.
    static func firstLineNotUTF8(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { raw -> Int? in
            var index = 0
            while index < raw.count {
                while index + 8 <= raw.count, raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                }
                guard index < raw.count else { break }
                guard raw[index] >= 0x80 else {
                    index += 1
                    continue
                }
                var start = index
                while start > 0, raw[start - 1] != 0x0A { start -= 1 }
                var end = index
                while end < raw.count, raw[end] != 0x0A { end += 1 }
                if String(validating: raw[start..<end], as: UTF8.self) == nil {
                    return 1 + raw[..<start].count { $0 == 0x0A }
                }
                index = end
            }
            return nil
        }
    }
}

/// Parses and checks rows on its own thread, handing batches to the store.
final class Producer: @unchecked Sendable {
    private var reader: CSVReader
    private var validator: LeadValidator
    private let queue: BatchQueue
    /// Written by the producer thread only, read after `finished`.
    private(set) var rejected: [(RejectedLead, CSVRecord)] = []
    private(set) var counts = CampaignStore.ImportCounts()
    let finished = DispatchSemaphore(value: 0)

    init(reader: CSVReader, validator: LeadValidator, queue: BatchQueue) {
        self.reader = reader
        self.validator = validator
        self.queue = queue
    }

    func run() {
        defer { self.finished.signal() }
        var batch: [ImportedLead] = []
        batch.reserveCapacity(4096)
        do {
            while let record = try self.reader.next() {
                switch self.validator.check(record, in: self.reader.bytes) {
                case .lead(let lead):
                    batch.append(lead)
                    if batch.count == 4096 {
                        guard self.queue.push(.batch(batch)) else { return }
                        batch.removeAll(keepingCapacity: true)
                    }
                case .rejected(let rejection):
                    self.rejected.append((rejection, record))
                    self.counts.rejected += 1
                case .unchanged:
                    self.counts.unchanged += 1
                }
            }
            if !batch.isEmpty { guard self.queue.push(.batch(batch)) else { return } }
            _ = self.queue.push(.end)
        } catch {
            _ = self.queue.push(.failed(error))
        }
    }
}

/// A bounded hand-over between the parsing thread and the inserting one.
final class BatchQueue: @unchecked Sendable {
    enum Item {
        case batch([ImportedLead])
        case end
        case failed(CSVError)
    }

    private let condition = NSCondition()
    private var items: [Item] = []
    private var cancelled = false
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// False when the consumer gave up.
    func push(_ item: Item) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.count >= self.capacity, !self.cancelled { self.condition.wait() }
        guard !self.cancelled else { return false }
        self.items.append(item)
        self.condition.broadcast()
        return true
    }

    /// The next batch, nil at the end; throws the parser's error.
    func pop() throws -> [ImportedLead]? {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.isEmpty { self.condition.wait() }
        let item = self.items.removeFirst()
        self.condition.broadcast()
        switch item {
        case .batch(let batch): return batch
        case .end:
            self.items.insert(.end, at: 0)
            return nil
        case .failed(let error): throw error
        }
    }

    func cancel() {
        self.condition.lock()
        self.cancelled = true
        self.condition.broadcast()
        self.condition.unlock()
    }
}
