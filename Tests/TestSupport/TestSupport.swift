import Foundation
import Logging
import NIOConcurrencyHelpers

/// Collects log lines in memory, for asserting what was (and was not) logged.
public final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    public init() {}

    /// A logger at `level` writing into this capture.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = level
        return logger
    }

    public var all: [String] { self.lines.withLockedValue { $0 } }

    func append(_ line: String) { self.lines.withLockedValue { $0.append(line) } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.capture.append("\(event.level) \(event.message) \(fields)")
    }
}

/// Remembers a port a server bound to, and waits for it.
public final class PortWaiter: Sendable {
    private let port = NIOLockedValueBox<Int?>(nil)

    public init() {}

    public func set(_ port: Int?) { self.port.withLockedValue { $0 = port } }

    public func wait() async throws -> Int {
        for _ in 0..<1000 {
            if let port = self.port.withLockedValue({ $0 }) { return port }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TimeoutError()
    }
}

public struct TimeoutError: Error {}

/// Polls `condition` until it holds (synchronisation between tasks, not a timing assertion).
public func eventually(
    within limit: Duration = .seconds(10),
    _ condition: @Sendable () async -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(2))
    }
    throw TimeoutError()
}

/// The next element of a stream that satisfies `predicate`, or nil if the stream ends.
public func next<Element: Sendable>(
    in iterator: inout AsyncStream<Element>.Iterator,
    where predicate: (Element) -> Bool
) async -> Element? {
    while let element = await iterator.next() {
        if predicate(element) { return element }
    }
    return nil
}

/// Compares `actual` with a committed golden file beside the test source (`Golden/NAME`).
/// With `CEX_UPDATE_GOLDEN=1` the file is rewritten instead; review the diff.
public func goldenMismatch(_ actual: String, name: String, testFile: String = #filePath) -> String? {
    let directory = URL(fileURLWithPath: testFile).deletingLastPathComponent().appendingPathComponent("Golden")
    let url = directory.appendingPathComponent(name)
    if ProcessInfo.processInfo.environment["CEX_UPDATE_GOLDEN"] == "1" {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try? actual.write(to: url, atomically: true, encoding: .utf8)
        return nil
    }
    guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
        return "missing golden file \(name); run with CEX_UPDATE_GOLDEN=1 to create it"
    }
    guard expected != actual else { return nil }
    let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
    for index in 0..<max(expectedLines.count, actualLines.count) {
        let want = index < expectedLines.count ? String(expectedLines[index]) : "<end>"
        let got = index < actualLines.count ? String(actualLines[index]) : "<end>"
        if want != got { return "\(name):\(index + 1): expected «\(want)», got «\(got)»" }
    }
    return "\(name) differs"
}
