import AudioSocket
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A frame the simulated Asterisk received from the engine.
public struct ReceivedFrame: Sendable, Hashable {
    public var kind: UInt8
    public var length: Int
    /// Time since the AudioSocket connection opened.
    public var arrival: Duration
}

/// What happened on the AudioSocket leg of one simulated call.
public struct CallerRecording: Sendable, Hashable {
    public enum Ending: Sendable, Hashable {
        /// The script hung up (closed the socket).
        case callerHungUp
        /// The engine sent 0x00.
        case engineHungUp
        /// The engine closed the socket without 0x00.
        case engineClosed
        /// 2 s without a frame in either direction (app_audiosocket's rule).
        case inactivity
        /// The engine broke a rule Asterisk enforces; the call was hung up.
        case violation(String)
        case connectFailed
        case maximumDuration
        /// The channel was not Up: connected and closed without sending the UUID.
        case notAnswered
        /// Hung up from the PBX side (an AMI Hangup or a simulated remote hang-up).
        case remoteHangup
    }

    public var callID: UUID
    public var ending: Ending
    public var received: [ReceivedFrame]
    /// The engine's audio, concatenated (8 kHz).
    public var receivedAudio: [Int16]
    public var framesSent: Int
    public var duration: Duration
}

/// The Asterisk side of an AudioSocket call: connects to the engine, sends the UUID frame, plays
/// the caller's script at real-time 20 ms pacing, and enforces what app_audiosocket enforces.
public struct SimulatedCaller: Sendable {
    public var host: String
    public var port: Int
    public var callID: UUID
    public var script: CallerScript
    /// Hang up after this long with no frame in either direction; nil turns the rule off.
    public var inactivityLimit: Duration?
    /// The only audio kind accepted from the engine.
    public var expectedFormat: AudioFormat
    /// When true, connect and close without sending anything (the channel was not Up).
    public var notUp: Bool
    /// Keep every received frame and sample in the recording (off for load tests).
    public var keepsRecording = true

    public init(
        host: String,
        port: Int,
        callID: UUID,
        script: CallerScript,
        inactivityLimit: Duration? = .seconds(2),
        expectedFormat: AudioFormat = .slin8,
        notUp: Bool = false
    ) {
        self.host = host
        self.port = port
        self.callID = callID
        self.script = script
        self.inactivityLimit = inactivityLimit
        self.expectedFormat = expectedFormat
        self.notUp = notUp
    }

    private final class Log: Sendable {
        struct State {
            var received: [ReceivedFrame] = []
            var audio: [Int16] = []
            var framesSent = 0
            var lastActivity: ContinuousClock.Instant
            /// When the engine last sent a frame with speech in it.
            var lastVoiced: ContinuousClock.Instant?
        }
        let state: NIOLockedValueBox<State>
        let start: ContinuousClock.Instant
        init(start: ContinuousClock.Instant) {
            self.start = start
            self.state = NIOLockedValueBox(State(lastActivity: start))
        }
    }

    /// Runs the call to its end. `hangupSignal` ends it from the PBX side when it finishes.
    public func run(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        hangupSignal: AsyncStream<Void>? = nil
    ) async -> CallerRecording {
        let clock = ContinuousClock()
        let start = clock.now
        let channel: NIOAsyncChannel<AudioSocketFrame, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.seconds(2))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: self.host, port: self.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AudioSocketFrameDecoder()))
                        return try NIOAsyncChannel<AudioSocketFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            return CallerRecording(callID: self.callID, ending: .connectFailed, received: [], receivedAudio: [], framesSent: 0, duration: clock.now - start)
        }

        if self.notUp {
            try? await channel.executeThenClose { _, _ in }
            return CallerRecording(callID: self.callID, ending: .notAnswered, received: [], receivedAudio: [], framesSent: 0, duration: clock.now - start)
        }

        let log = Log(start: start)
        let ending: CallerRecording.Ending
        do {
            ending = try await channel.executeThenClose { inbound, outbound in
                var uuidFrame = channel.channel.allocator.buffer(capacity: 19)
                AudioSocketFrame.uuid(self.callID).encode(into: &uuidFrame)
                try await outbound.write(uuidFrame)
                log.state.withLockedValue { $0.lastActivity = clock.now }

                // nil: no verdict (the caller's writes failed because the engine closed; the reader says how).
                return await withTaskGroup(of: CallerRecording.Ending?.self) { group in
                    group.addTask { await self.read(inbound, log: log) }
                    group.addTask { await self.play(outbound, allocator: channel.channel.allocator, log: log) }
                    group.addTask { await self.watch(log: log) }
                    if let hangupSignal {
                        group.addTask {
                            for await _ in hangupSignal { return .remoteHangup }
                            // The signal stream ended without a hang-up: never decide the ending.
                            try? await Task.sleep(for: .seconds(86_400))
                            return .remoteHangup
                        }
                    }
                    var ending = CallerRecording.Ending.engineClosed
                    while let next = await group.next() {
                        guard let next else { continue }
                        ending = next
                        break
                    }
                    group.cancelAll()
                    return ending
                }
            }
        } catch {
            ending = .engineClosed
        }
        let state = log.state.withLockedValue { $0 }
        return CallerRecording(
            callID: self.callID,
            ending: ending,
            received: state.received,
            receivedAudio: state.audio,
            framesSent: state.framesSent,
            duration: clock.now - start
        )
    }

    private func read(_ inbound: NIOAsyncChannelInboundStream<AudioSocketFrame>, log: Log) async -> CallerRecording.Ending {
        do {
            for try await frame in inbound {
                let now = ContinuousClock.now
                let arrival = now - log.start
                switch frame {
                case .audio(let format, let payload):
                    log.state.withLockedValue { state in
                        state.lastActivity = now
                        if self.keepsRecording {
                            state.received.append(ReceivedFrame(kind: format.rawValue, length: payload.readableBytes, arrival: arrival))
                        }
                        if format == self.expectedFormat {
                            let samples = payload.pcmSamples()
                            if self.keepsRecording { state.audio.append(contentsOf: samples) }
                            if samples.contains(where: { $0.magnitude > 1_000 }) { state.lastVoiced = now }
                        }
                    }
                    guard format == self.expectedFormat else {
                        return .violation("audio of kind 0x\(String(format.rawValue, radix: 16)) where 0x\(String(self.expectedFormat.rawValue, radix: 16)) was expected")
                    }
                case .hangup:
                    log.state.withLockedValue { $0.received.append(ReceivedFrame(kind: 0x00, length: 0, arrival: arrival)) }
                    return .engineHungUp
                case .uuid:
                    return .violation("Received AudioSocket message other than hangup or audio (kind 0x01)")
                case .dtmf:
                    return .violation("Received AudioSocket message other than hangup or audio (kind 0x03)")
                case .error:
                    return .violation("Received AudioSocket message other than hangup or audio (kind 0xff)")
                }
            }
            return .engineClosed
        } catch {
            return .violation("\(error)")
        }
    }

    private func play(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, allocator: ByteBufferAllocator, log: Log) async -> CallerRecording.Ending? {
        let clock = ContinuousClock()
        var deadline = clock.now
        let frameDuration = Duration.milliseconds(20)
        let silence = [Int16](repeating: 0, count: 160)

        func send(_ samples: ArraySlice<Int16>) async throws {
            var buffer = allocator.buffer(capacity: 323)
            var payload = allocator.buffer(capacity: 320)
            payload.writePCMSamples(samples)
            if samples.count < 160 { payload.writeRepeatingByte(0, count: (160 - samples.count) * 2) }
            AudioSocketFrame.audio(.slin8, payload).encode(into: &buffer)
            try await clock.sleep(until: deadline)
            try await outbound.write(buffer)
            deadline += frameDuration
            log.state.withLockedValue {
                $0.framesSent += 1
                $0.lastActivity = clock.now
            }
        }

        do {
            for step in self.script.steps {
                switch step {
                case .say(let samples):
                    var index = 0
                    while index < samples.count {
                        try await send(samples[index..<min(index + 160, samples.count)])
                        index += 160
                    }
                case .pause(let duration, let sendSilence):
                    let end = deadline + duration
                    if sendSilence {
                        while deadline < end { try await send(silence[...]) }
                    } else {
                        deadline = end
                        try await clock.sleep(until: deadline)
                    }
                case .waitForPause(let quiet):
                    let begun = clock.now
                    while true {
                        let lastVoiced = log.state.withLockedValue { $0.lastVoiced }
                        if let lastVoiced, lastVoiced > begun, clock.now - lastVoiced >= quiet { break }
                        if self.script.silenceBetweenSteps {
                            try await send(silence[...])
                        } else {
                            deadline += frameDuration
                            try await clock.sleep(until: deadline)
                        }
                    }
                case .dtmf(let digit):
                    var buffer = allocator.buffer(capacity: 4)
                    AudioSocketFrame.dtmf(digit).encode(into: &buffer)
                    try await outbound.write(buffer)
                case .raw(let bytes):
                    try await outbound.write(allocator.buffer(bytes: bytes))
                case .hangup:
                    return .callerHungUp
                }
            }
            // The script is over: keep the line open until the engine ends the call.
            while true {
                if self.script.silenceBetweenSteps {
                    try await send(silence[...])
                } else {
                    try await clock.sleep(for: .seconds(1))
                }
            }
        } catch {
            // Cancelled because the call ended another way, or the write failed because the
            // engine closed: the reader, which sees the hang-up frame if one came, decides.
            return nil
        }
    }

    private func watch(log: Log) async -> CallerRecording.Ending {
        let clock = ContinuousClock()
        while !Task.isCancelled {
            do { try await clock.sleep(for: .milliseconds(50)) } catch { break }
            let now = clock.now
            if now - log.start >= self.script.maximumDuration { return .maximumDuration }
            if let limit = self.inactivityLimit, now - log.state.withLockedValue({ $0.lastActivity }) >= limit {
                return .inactivity
            }
        }
        return .engineClosed
    }
}
