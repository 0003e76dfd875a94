import CampaignApp
import CampaignCore
import CampaignStore
import Foundation

// Usage: LeadImport CSV TEMPLATE [STORE]
// Imports a lead file into a fresh store as `cex leads import` does (every row checked:
// E.164, NANP area code, timezone, duplicates, DNC, required variables) and prints the time.
let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: LeadImport CSV TEMPLATE [STORE]")
    exit(2)
}
let csv = URL(fileURLWithPath: arguments[1]).standardizedFileURL.path
let template = URL(fileURLWithPath: arguments[2]).standardizedFileURL.path
let storePath = arguments.count > 3 ? arguments[3] : "/tmp/cex-bench/import.sqlite"
for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
let campaignFile = URL(fileURLWithPath: storePath).deletingLastPathComponent().appendingPathComponent("import-bench.yaml").path
let yaml = """
    name: import-bench
    leads: \(csv)
    template: \(template)
    caller_id: '"Bench" <+12125550100>'
    ami: {username: cex}
    dial: PJSIP/{phone}@trunk
    """
let campaign = try CampaignFile.parse(yaml, file: campaignFile)
let store = try CampaignStore(path: storePath)
let campaignID = try store.campaignID(campaign)
let importer = LeadImporter(store: store, campaignID: campaignID, campaign: campaign, requiredVariables: ["first_name"])

let clock = ContinuousClock()
let onlyInsert = ProcessInfo.processInfo.environment["ONLY_INSERT"] != nil
if !onlyInsert {
let start = clock.now
let report = try importer.importFile(csv)
let elapsed = clock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "cex import: %d imported, %d unchanged, %d rejected in %.2f s (%.0f rows/s)",
    report.counts.imported, report.counts.unchanged, report.counts.rejected, seconds, Double(report.counts.imported + report.counts.rejected) / seconds))

let again = clock.now
let second = try importer.importFile(csv)
let elapsedAgain = clock.now - again
print(String(format: "cex re-import of the same file: %d imported, %d unchanged, %d rejected in %.2f s",
    second.counts.imported, second.counts.unchanged, second.counts.rejected,
    Double(elapsedAgain.components.seconds) + Double(elapsedAgain.components.attoseconds) / 1e18))

// The parsing and checking alone, on one thread, to see how the time splits.
do {
    let bytes = [UInt8](FileManager.default.contents(atPath: csv)!)
    let parseStart = clock.now
    var reader = CSVReader(bytes: bytes)
    let header = try reader.next()!
    var validator = try LeadValidator(
        columns: try LeadColumns(header: header.strings(in: bytes)), parser: try PhoneNumberParser(defaultRegion: "US"), defaultTimeZone: nil,
        requiredVariables: ["first_name"], doNotCall: [], existing: [])
    var leads = 0
    var records = 0
    while let record = try reader.next() {
        records += 1
        if case .lead = validator.check(record, in: bytes) { leads += 1 }
    }
    let parseSeconds = clock.now - parseStart
    print("parse and check alone: \(records) records, \(leads) leads in \(parseSeconds)")
    let readStart = clock.now
    var reader2 = CSVReader(bytes: bytes)
    var count = 0
    while try reader2.next() != nil { count += 1 }
    print("CSV reading alone: \(count) records in \(clock.now - readStart)")
}
}

// Insert alone: every batch ready before the transaction starts.
do {
    let bytes = [UInt8](FileManager.default.contents(atPath: csv)!)
    var reader = CSVReader(bytes: bytes)
    let header = try reader.next()!
    var validator = try LeadValidator(
        columns: try LeadColumns(header: header.strings(in: bytes)), parser: try PhoneNumberParser(defaultRegion: "US"), defaultTimeZone: nil,
        requiredVariables: ["first_name"], doNotCall: [], existing: [])
    var batches: [[ImportedLead]] = [[]]
    while let record = try reader.next() {
        if case .lead(let lead) = validator.check(record, in: bytes) {
            batches[batches.count - 1].append(lead)
            if batches[batches.count - 1].count == 4096 { batches.append([]) }
        }
    }
    let path2 = storePath + ".2"
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path2 + suffix) }
    let store2 = try CampaignStore(path: path2)
    let id2 = try store2.campaignID(campaign)
    var iterator = batches.makeIterator()
    let insertStart = clock.now
    _ = try store2.importLeads(campaignID: id2, file: csv, header: [], bytes: bytes, expectedRows: 1_000_000, next: { iterator.next() }, counts: { .init() })
    print("insert alone: \(clock.now - insertStart)")
}
