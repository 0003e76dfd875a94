import NIOCore

extension SimulatedAsterisk {
    /// A manager.conf user.
    public struct User: Sendable, Hashable {
        public var username: String
        public var secret: String
        /// Event classes the user may read (`read=`), e.g. call, dialplan, user, system.
        public var read: Set<String>
        /// Action classes the user may use (`write=`); Originate needs `originate`.
        public var write: Set<String>

        public init(
            username: String,
            secret: String,
            read: Set<String> = ["call", "dialplan", "user", "system"],
            write: Set<String> = ["originate", "call", "system"]
        ) {
            self.username = username
            self.secret = secret
            self.read = read
            self.write = write
        }
    }

    /// A dialplan context the answered channel can be sent to: runs `AudioSocket(${variable},host:port)`,
    /// optionally after `AMD()`, as in the README's extensions.conf.
    public struct DialplanContext: Sendable, Hashable {
        public var engineHost: String
        public var enginePort: Int
        /// The channel variable holding the call's UUID.
        public var callIDVariable: String
        public var runsAMD: Bool

        public init(engineHost: String, enginePort: Int, callIDVariable: String = "CEX_CALL_ID", runsAMD: Bool = false) {
            self.engineHost = engineHost
            self.enginePort = enginePort
            self.callIDVariable = callIDVariable
            self.runsAMD = runsAMD
        }
    }

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var users: [User]
        /// Contexts by name, e.g. `ai-outbound`.
        public var contexts: [String: DialplanContext]
        /// Behaviour by dialled number (the part of the channel between `/` and `@`).
        public var directory: [String: CalleeBehaviour]
        public var defaultBehaviour: CalleeBehaviour
        /// How long destinations ring before answering, or before busy and the like.
        public var ringTime: Duration
        /// Asterisk sleeps this long before refusing a login.
        public var authenticationFailureDelay: Duration
        /// The AudioSocket app's 2 s no-traffic rule; nil turns it off.
        public var audioInactivityLimit: Duration?
        /// Seeds the choices the simulator makes at random (event order); nil seeds from the system.
        public var seed: UInt64?
        public var onListening: (@Sendable (SocketAddress) -> Void)?

        public init(
            host: String = "127.0.0.1",
            port: Int = 5038,
            users: [User],
            contexts: [String: DialplanContext] = [:],
            directory: [String: CalleeBehaviour] = [:],
            defaultBehaviour: CalleeBehaviour = .answer(.listen),
            ringTime: Duration = .seconds(1),
            authenticationFailureDelay: Duration = .seconds(1),
            audioInactivityLimit: Duration? = .seconds(2),
            seed: UInt64? = nil,
            onListening: (@Sendable (SocketAddress) -> Void)? = nil
        ) {
            self.host = host
            self.port = port
            self.users = users
            self.contexts = contexts
            self.directory = directory
            self.defaultBehaviour = defaultBehaviour
            self.ringTime = ringTime
            self.authenticationFailureDelay = authenticationFailureDelay
            self.audioInactivityLimit = audioInactivityLimit
            self.seed = seed
            self.onListening = onListening
        }
    }

    /// The outcome of one simulated Originate, as the PBX saw it.
    public struct CallReport: Sendable, Hashable {
        public var uniqueID: String
        public var channel: String
        public var destination: String
        public var reason: Int
        public var dialStatus: String?
        public var cause: Int
        public var recording: CallerRecording?
    }
}

/// A small deterministic random source (SplitMix64).
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
