import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator
import Speech

/// A real Asterisk 22 for one test: the binary `make asterisk` built (`CEX_ASTERISK_PREFIX`,
/// default `/var/cache/cex/asterisk-22.10.1`), started in a folder of its own with a
/// configuration the test writes (never the system's), AMI on a free loopback port, only the
/// modules cex needs loaded, and stopped with `core stop now` at the end.
final class RealAsterisk: Sendable {
    struct NotBuilt: Error, CustomStringConvertible {
        var prefix: String
        var description: String { "no Asterisk in \(prefix): run `make asterisk` (or set CEX_ASTERISK_PREFIX)" }
    }

    struct StartFailed: Error, CustomStringConvertible {
        var description: String
    }

    static let defaultPrefix = "/var/cache/cex/asterisk-22.10.1"

    static var prefix: String { ProcessInfo.processInfo.environment["CEX_ASTERISK_PREFIX"] ?? Self.defaultPrefix }

    let directory: URL
    let amiPort: Int
    let username = "cex"
    let secret = UUID().uuidString
    private let process: NIOLockedValueBox<Process>

    /// Starts Asterisk with `dialplan` as extensions.conf. `transmitSilence`: a channel that
    /// plays nothing sends silence frames (a phone line does); without it the AudioSocket peer
    /// gets no frames while the callee is quiet.
    init(dialplan: String, transmitSilence: Bool) async throws {
        let prefix = Self.prefix
        let binary = prefix + "/sbin/asterisk"
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw NotBuilt(prefix: prefix) }
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("asterisk-\(UUID().uuidString.prefix(8))")
        self.amiPort = try await Self.freePort()
        let etc = self.directory.appendingPathComponent("etc")
        for folder in ["etc", "run", "log", "spool", "lib"] {
            try FileManager.default.createDirectory(at: self.directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let dir = self.directory.path
        let files: [String: String] = [
            "asterisk.conf": """
                [directories]
                astetcdir => \(dir)/etc
                astmoddir => \(prefix)/lib/asterisk/modules
                astvarlibdir => \(dir)/lib
                astdbdir => \(dir)/lib
                astkeydir => \(dir)/lib
                astdatadir => \(prefix)/var/lib/asterisk
                astagidir => \(dir)/lib
                astspooldir => \(dir)/spool
                astrundir => \(dir)/run
                astlogdir => \(dir)/log
                astsbindir => \(prefix)/sbin
                [options]
                transmit_silence = \(transmitSilence ? "yes" : "no")
                """,
            "modules.conf": """
                [modules]
                autoload = no
                \(Self.modules.map { "load => \($0).so" }.joined(separator: "\n"))
                """,
            "logger.conf": """
                [general]
                [logfiles]
                messages.log => notice,warning,error,verbose(3)
                """,
            "manager.conf": """
                [general]
                enabled = yes
                port = \(self.amiPort)
                bindaddr = 127.0.0.1

                [\(self.username)]
                secret = \(self.secret)
                read = call,dialplan,user,system
                write = originate,call,system
                """,
            "extensions.conf": dialplan,
            // Asterisk's sample settings: app_amd declines to load without the file.
            "amd.conf": """
                [general]
                total_analysis_time = 5000
                silence_threshold = 256
                initial_silence = 2500
                after_greeting_silence = 800
                greeting = 1500
                min_word_length = 100
                maximum_word_length = 5000
                between_words_silence = 50
                maximum_number_of_words = 2
                """,
        ]
        for (name, text) in files { try text.write(to: etc.appendingPathComponent(name), atomically: true, encoding: .utf8) }

        self.process = NIOLockedValueBox(try Self.launch(binary: binary, configuration: etc.appendingPathComponent("asterisk.conf").path))
        do {
            try await self.waitForAMI()
            _ = try self.cli("core waitfullybooted")
        } catch {
            self.kill()
            throw error
        }
    }

    private static func launch(binary: String, configuration: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-C", configuration, "-f", "-n", "-q"]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// A crash and a restart: SIGKILL (every channel, the AMI and AudioSocket sockets gone at
    /// once, as a power cut leaves them), then the same PBX started again on the same ports.
    func crashAndRestart() async throws {
        self.kill()
        let process = try Self.launch(binary: Self.prefix + "/sbin/asterisk", configuration: self.directory.appendingPathComponent("etc/asterisk.conf").path)
        self.process.withLockedValue { $0 = process }
        try await self.waitForAMI()
        _ = try self.cli("core waitfullybooted")
    }

    /// Modules loaded: AMI is core; Local channels are core; these add the rest.
    static let modules = [
        "res_timing_timerfd", "pbx_config", "app_audiosocket", "res_audiosocket", "chan_audiosocket", "app_playback", "app_amd",
        "app_mixmonitor", "app_userevent", "app_waitforsilence", "app_verbose", "format_wav", "format_pcm", "codec_ulaw",
        "bridge_simple", "func_channel", "func_strings",
    ]

    /// Runs a CLI command through the control socket (`asterisk -rx`), returns what it printed.
    @discardableResult
    func cli(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.prefix + "/sbin/asterisk")
        process.arguments = ["-C", self.directory.appendingPathComponent("etc/asterisk.conf").path, "-rx", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }

    /// Channels up now, as `core show channels count` says.
    func activeChannels() throws -> Int {
        let output = try self.cli("core show channels count")
        for line in output.split(separator: "\n") where line.contains("active channel") {
            return Int(line.split(separator: " ").first ?? "") ?? -1
        }
        return -1
    }

    /// The PBX's own log (notices, warnings, verbose 3), for a failing test's message.
    var log: String { (try? String(contentsOf: self.directory.appendingPathComponent("log/messages.log"), encoding: .utf8)) ?? "" }

    func stop() async {
        _ = try? self.cli("core stop now")
        for _ in 0..<100 where self.process.withLockedValue({ $0 }).isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        self.kill()
        try? FileManager.default.removeItem(at: self.directory)
    }

    private func kill() {
        let process = self.process.withLockedValue { $0 }
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private func waitForAMI() async throws {
        for _ in 0..<400 {
            let process = self.process.withLockedValue { $0 }
            guard process.isRunning else { throw StartFailed(description: "asterisk exited with \(process.terminationStatus): \(self.log)") }
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: self.amiPort).get() {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StartFailed(description: "AMI did not listen within 20 s: \(self.log)")
    }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Writes what a callee says as an 8 kHz WAV in `folder`, for `Playback(path)`; returns the
    /// path without its extension, as Playback wants it.
    static func render(_ text: String, as name: String, in folder: URL, with synthesizer: any SpeechSynthesizer = FliteSynthesizer()) async throws -> String {
        var samples: [Int16] = []
        for try await chunk in synthesizer.synthesize(text) { samples += chunk }
        return try self.save(samples, as: name, in: folder)
    }

    /// Writes 8 kHz audio as `<folder>/<name>.wav`; returns the path Playback takes (no extension).
    static func save(_ samples: [Int16], as name: String, in folder: URL) throws -> String {
        try Data(WAVFile(sampleRate: 8000, samples: samples).bytes).write(to: folder.appendingPathComponent("\(name).wav"))
        return folder.appendingPathComponent(name).path
    }
}
