import FuzzDriver
import CampaignCore
import Conversation

/// Any text as a campaign file and as a template: a value or an error naming the file, never a trap.
runFuzzer { data, size in
    let text = String(decoding: FuzzDriver.bytes(data, size), as: UTF8.self)
    _ = try? CampaignFile.parse(text, file: "/nonexistent/fuzz.yaml")
    _ = try? PitchTemplate.parse(text, file: "fuzz.yaml")
    return 0
}
