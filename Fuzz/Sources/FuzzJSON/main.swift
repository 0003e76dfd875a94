import FuzzDriver
import JSON

/// Any bytes: `JSONReader` returns a value or nil, never traps.
runFuzzer { data, size in
    _ = JSONReader.read(FuzzDriver.bytes(data, size))
    return 0
}
