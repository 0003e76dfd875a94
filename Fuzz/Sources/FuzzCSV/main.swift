import FuzzDriver
import CampaignCore

/// Any bytes: the CSV reader yields records or a `CSVError` with a line, never traps; the lead
/// header reader accepts or refuses the first record.
runFuzzer { data, size in
    let bytes = Array(FuzzDriver.bytes(data, size))
    var reader = CSVReader(bytes: bytes)
    var first = true
    while let record = try? reader.next() {
        let fields = record.strings(in: bytes)
        if first { _ = try? LeadColumns(header: fields) }
        first = false
    }
    return 0
}
