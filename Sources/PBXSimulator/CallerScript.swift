import Foundation

/// What a simulated callee does once the call is answered and connected to the engine.
public struct CallerScript: Sendable, Hashable {
    public enum Step: Sendable, Hashable {
        /// Speak 8 kHz samples, paced in real time as 320-byte frames.
        case say([Int16])
        /// Stay quiet for a while, sending silence frames or nothing at all.
        case pause(Duration, sendSilence: Bool)
        /// Wait, as a person does, for the engine to speak and then be quiet this long. Only
        /// speech that starts after the step begins counts. Silence frames go out meanwhile
        /// when `silenceBetweenSteps` is set.
        case waitForPause(Duration)
        /// Press a key (sent as a 0x03 frame).
        case dtmf(Character)
        /// Send raw bytes as they are (for testing the engine against malformed frames).
        case raw([UInt8])
        /// Hang up by closing the socket, as Asterisk does.
        case hangup
    }

    public var steps: [Step]
    /// Between steps and after the last one, send silence frames (true) or nothing (false), as a
    /// channel that produces no frames during silence would.
    public var silenceBetweenSteps: Bool
    /// The longest the call may last; then the callee hangs up.
    public var maximumDuration: Duration

    public init(steps: [Step], silenceBetweenSteps: Bool = true, maximumDuration: Duration = .seconds(60)) {
        self.steps = steps
        self.silenceBetweenSteps = silenceBetweenSteps
        self.maximumDuration = maximumDuration
    }

    /// Answers and listens until the engine hangs up (or `maximumDuration`).
    public static let listen = CallerScript(steps: [])
}

/// How a simulated destination responds to being dialled.
public enum CalleeBehaviour: Sendable, Hashable {
    /// Rings, answers, connects to the engine over AudioSocket and follows the script.
    case answer(CallerScript)
    /// A voicemail box: answers and plays a greeting; AMD (when the context runs it) says MACHINE.
    case voicemail(CallerScript)
    /// Answers, but the channel is not Up when AudioSocket starts: connects and closes without a UUID.
    case answerNotUp
    case busy
    /// Rings until the Originate timeout.
    case noAnswer
    case congestion
    /// The number does not exist (SIP 404).
    case unallocated
    /// The callee declines (SIP 603).
    case rejected
}

/// Generates test audio.
public enum TestAudio {
    /// A sine tone at 8 kHz.
    public static func tone(frequency: Double = 440, duration: Duration = .milliseconds(500), amplitude: Double = 8000) -> [Int16] {
        let count = Int(Double(duration.components.seconds) * 8000 + Double(duration.components.attoseconds) / 1e18 * 8000)
        return (0..<count).map { index in
            Int16(amplitude * sin(2 * Double.pi * frequency * Double(index) / 8000))
        }
    }
}
