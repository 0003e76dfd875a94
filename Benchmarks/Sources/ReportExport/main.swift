import CampaignStore
import Foundation
import Reports

// Usage: ReportExport STORE CAMPAIGN [OUT_DIRECTORY]
// Exports a campaign's per-lead report as `cex report export` does, as CSV and as JSON,
// and prints the time of each.
let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: ReportExport STORE CAMPAIGN [OUT_DIRECTORY]")
    exit(2)
}
let store = try CampaignStore(path: arguments[1])
guard let campaignID = try store.campaignID(named: arguments[2]) else {
    print("no campaign named \(arguments[2])")
    exit(1)
}
let directory = arguments.count > 3 ? arguments[3] : "/tmp/cex-bench"
let clock = ContinuousClock()
for format in ReportExporter.Format.allCases {
    let path = "\(directory)/export.\(format.rawValue)"
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    let start = clock.now
    let rows = try ReportExporter.export(store: store, campaignID: campaignID, campaign: arguments[2], format: format, to: handle)
    try handle.close()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    print(String(format: "cex report export --format %@: %d leads, %d bytes in %.2f s", format.rawValue, rows, size, seconds))
}

// The store's read alone (rows handed over, nothing written), to see how the time splits.
let scanStart = clock.now
var scanned = 0
try store.forEachLeadReport(campaignID: campaignID) { _ in scanned += 1 }
print("store read alone: \(scanned) leads in \(clock.now - scanStart)")
