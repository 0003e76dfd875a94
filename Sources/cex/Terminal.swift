import CampaignApp
import CampaignCore
import Foundation
import Logging
import Synchronization

/// Writes a line to standard output at once, through the terminal. (Swift's `print` is
/// block-buffered into a file or pipe: a cron log would stay empty until the command exits.)
func say(_ text: String) { Terminal.shared.say(text) }

/// Where a command's lines go. On a terminal the progress line stays below the log: a log
/// line clears it, is written, and the progress is drawn again. Anywhere else (cron's log file,
/// a pipe) every line is written the moment it happens, progress lines are timestamped, and the
/// progress is written when a call settles and every 30 s in between.
final class Terminal: Sendable {
    static let shared = Terminal(tty: isatty(STDOUT_FILENO) != 0)

    let tty: Bool
    private struct State {
        var started = ContinuousClock.now
        var shown: String?
        var lastSettled = -1
        var lastWritten: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    init(tty: Bool) { self.tty = tty }

    /// A log line (from `LogStream`), kept clear of the progress line.
    func log(_ text: String) {
        self.state.withLock { state in
            if self.tty, state.shown != nil { Self.write("\r\u{1B}[K", to: .standardOutput) }
            Self.write(text, to: .standardError)
            if self.tty, let shown = state.shown { Self.write(shown, to: .standardOutput) }
        }
    }

    /// A line of the command's own output, kept clear of the progress line.
    func say(_ text: String) {
        self.state.withLock { state in
            if self.tty, state.shown != nil { Self.write("\r\u{1B}[K", to: .standardOutput) }
            Self.write(text + "\n", to: .standardOutput)
            if self.tty, let shown = state.shown { Self.write(shown, to: .standardOutput) }
        }
    }

    /// Restarts the elapsed-time clock (a new campaign in `campaign run`).
    func begin() {
        self.state.withLock { $0 = State() }
    }

    func show(_ progress: CampaignRunner.Progress) {
        self.state.withLock { state in
            let now = ContinuousClock.now
            let line = Self.line(progress, elapsed: state.started.duration(to: now))
            if self.tty {
                guard line != state.shown else { return }
                Self.write("\r\u{1B}[K" + line, to: .standardOutput)
                state.shown = line
            } else if progress.settled != state.lastSettled || state.lastWritten.map({ $0.duration(to: now) >= .seconds(30) }) ?? true {
                Self.write("\(Self.timestamp()) \(line)\n", to: .standardOutput)
                state.lastSettled = progress.settled
                state.lastWritten = now
            }
        }
    }

    /// Ends the progress line: what follows starts on a line of its own.
    func finish() {
        self.state.withLock { state in
            if self.tty, state.shown != nil { Self.write("\n", to: .standardOutput) }
            state.shown = nil
        }
    }

    /// `done 12/40 (30%)  live 3 (ringing 1, talking 2)  dialled 15  elapsed 2m10s  ETA 5m  [busy 2, interested 4]`
    static func line(_ progress: CampaignRunner.Progress, elapsed: Duration) -> String {
        let total = max(progress.leadsDue, progress.settled + progress.live)
        let percent = total > 0 ? min(100, progress.settled * 100 / total) : 100
        var line = "done \(progress.settled)/\(total) (\(percent)%)  live \(progress.live) (ringing \(progress.ringing), talking \(progress.talking))"
        line += "  dialled \(progress.dialled)  elapsed \(Self.format(elapsed))"
        if progress.settled > 0, total > progress.settled {
            line += "  ETA \(Self.format(elapsed * Double(total - progress.settled) / Double(progress.settled)))"
        }
        let outcomes = progress.outcomes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        if !outcomes.isEmpty { line += "  [\(outcomes.joined(separator: ", "))]" }
        return line
    }

    /// `45s`, `2m10s`, `1h05m`.
    static func format(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(String(format: "%02d", seconds % 60))s" }
        return "\(seconds / 3600)h\(String(format: "%02d", seconds / 60 % 60))m"
    }

    static func timestamp() -> String {
        Date.ISO8601FormatStyle(timeZone: .current).year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted)
            .format(Date())
    }

    private static func write(_ text: String, to handle: FileHandle) {
        handle.write(Data(text.utf8))
    }

    /// The log's stream: lines go through the terminal.
    struct LogStream: TextOutputStream, Sendable {
        let terminal: Terminal
        mutating func write(_ string: String) { self.terminal.log(string) }
    }
}
