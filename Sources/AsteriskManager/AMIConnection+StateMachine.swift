/// The rules of one AMI connection, as a value: banner → (challenge) → login → ready → closing → closed.
///
/// The I/O layer feeds it what happened and runs the `Action` it returns. It owns ActionID
/// correlation: a reply completes the action with the same ActionID; a reply that opens an
/// event list (`EventList: start`) keeps the action open, gathering the events with that
/// ActionID until the one marked `EventList: Complete`.
public struct AMIConnectionStateMachine: Sendable {
    public struct Configuration: Sendable {
        public var username: String
        public var secret: String
        public var authentication: Authentication
        public var events: EventMask?

        public init(username: String, secret: String, authentication: Authentication = .plain, events: EventMask? = nil) {
            self.username = username
            self.secret = secret
            self.authentication = authentication
            self.events = events
        }
    }

    /// How to prove the secret.
    public enum Authentication: Sendable, Hashable {
        /// `Secret:` in the Login action.
        case plain
        /// `Challenge` first, then `Key: md5(challenge + secret)`; the secret never crosses the wire.
        case md5
    }

    public enum Action: Sendable, Hashable {
        case none
        case write(AMIMessage)
        /// Login accepted: the connection is ready for actions.
        case authenticated
        /// Login refused: close the connection and do not retry.
        case authenticationFailed(String)
        /// Close the connection: after Goodbye (nil) or because of an error.
        case close(AMIClientError?)
        case succeedRequest(id: String, AMIResponse)
        case failRequest(id: String, AMIClientError)
        case failRequests(ids: [String], AMIClientError)
        case deliverEvent(AMIEvent)
    }

    private enum State: Sendable {
        case awaitingBanner
        case challenging
        case authenticating
        case ready
        case closing
        case closed
    }

    private struct Pending: Sendable {
        var response: AMIMessage?
        var events: [AMIMessage] = []
    }

    private var state: State = .awaitingBanner
    private let configuration: Configuration
    private var pending: [String: Pending] = [:]
    private var outstandingPing: String?
    private var counter = 0

    static let loginID = "cex-login"
    static let challengeID = "cex-challenge"
    static let logoffID = "cex-logoff"

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether actions may be sent.
    public var isReady: Bool {
        if case .ready = self.state { return true }
        return false
    }

    /// A fresh ActionID for an action that has none.
    public mutating func makeActionID() -> String {
        self.counter += 1
        return "cex-\(self.counter)"
    }

    public mutating func bannerReceived(_ banner: String) -> Action {
        guard case .awaitingBanner = self.state else { return .close(.protocolViolation(.unexpectedGreeting)) }
        switch self.configuration.authentication {
        case .plain:
            self.state = .authenticating
            do {
                let login = try AMIAction.login(
                    username: self.configuration.username,
                    secret: self.configuration.secret,
                    events: self.configuration.events
                )
                return .write(login.message(actionID: Self.loginID))
            } catch {
                return .authenticationFailed("the username or secret contains a line break")
            }
        case .md5:
            self.state = .challenging
            return .write(AMIAction.challenge.message(actionID: Self.challengeID))
        }
    }

    public mutating func messageReceived(_ message: AMIMessage) -> Action {
        switch message.kind {
        case .response:
            return self.responseReceived(message)
        case .event:
            return self.eventReceived(message)
        case .action, .other, .empty:
            return .none
        }
    }

    private mutating func responseReceived(_ message: AMIMessage) -> Action {
        let id = message["ActionID"]
        let succeeded = message["Response"]?.lowercased() == "success"
        switch self.state {
        case .awaitingBanner, .closed:
            return .none
        case .challenging:
            guard id == Self.challengeID else { return .none }
            guard succeeded, let challenge = message["Challenge"] else {
                self.state = .closed
                return .authenticationFailed(message["Message"] ?? "challenge refused")
            }
            self.state = .authenticating
            do {
                let login = try AMIAction.login(
                    username: self.configuration.username,
                    challenge: challenge,
                    secret: self.configuration.secret,
                    events: self.configuration.events
                )
                return .write(login.message(actionID: Self.loginID))
            } catch {
                return .authenticationFailed("the username contains a line break")
            }
        case .authenticating:
            guard id == Self.loginID else { return .none }
            guard succeeded else {
                self.state = .closed
                return .authenticationFailed(message["Message"] ?? "Authentication failed")
            }
            self.state = .ready
            return .authenticated
        case .ready, .closing:
            if message["Response"]?.lowercased() == "goodbye", id == Self.logoffID || id == nil {
                self.state = .closed
                return .close(nil)
            }
            guard let id else { return .none }
            if id == self.outstandingPing {
                self.outstandingPing = nil
                return .none
            }
            guard var request = self.pending[id], request.response == nil else { return .none }
            if message["EventList"]?.lowercased() == "start" {
                request.response = message
                self.pending[id] = request
                return .none
            }
            self.pending[id] = nil
            return .succeedRequest(id: id, AMIResponse(message: message))
        }
    }

    private mutating func eventReceived(_ message: AMIMessage) -> Action {
        if let id = message["ActionID"], var request = self.pending[id], let response = request.response {
            request.events.append(message)
            if message["EventList"]?.lowercased() == "complete" {
                self.pending[id] = nil
                return .succeedRequest(id: id, AMIResponse(message: response, events: request.events))
            }
            self.pending[id] = request
            return .none
        }
        guard let event = AMIEvent(message) else { return .none }
        return .deliverEvent(event)
    }

    /// The application wants to send `action` with ActionID `id`.
    public mutating func sendRequested(_ action: AMIAction, id: String) -> Action {
        switch self.state {
        case .ready:
            guard self.pending[id] == nil, id != self.outstandingPing, !id.hasPrefix("cex-login"), id != Self.logoffID else {
                return .failRequest(id: id, .duplicateActionID)
            }
            self.pending[id] = Pending()
            return .write(action.message(actionID: id))
        case .closing:
            return .failRequest(id: id, .closing)
        case .awaitingBanner, .challenging, .authenticating, .closed:
            return .failRequest(id: id, .notConnected)
        }
    }

    /// No reply came for `id` in time: forget it so a late reply is ignored.
    public mutating func requestTimedOut(id: String) -> Action {
        guard self.pending.removeValue(forKey: id) != nil else { return .none }
        return .failRequest(id: id, .responseTimeout)
    }

    /// The login deadline passed: a server that has not sent its banner or answered the login
    /// by now is not going to (a stalled PBX, or something other than AMI on the port).
    public mutating func loginTimedOut() -> Action {
        switch self.state {
        case .awaitingBanner:
            self.state = .closed
            return .close(.loginTimeout(stage: "banner"))
        case .challenging, .authenticating:
            self.state = .closed
            return .close(.loginTimeout(stage: "login reply"))
        case .ready, .closing, .closed:
            return .none
        }
    }

    /// The keepalive timer fired: send a Ping, or give up if the last one was never answered.
    public mutating func keepaliveTick() -> Action {
        guard case .ready = self.state else { return .none }
        if self.outstandingPing != nil {
            self.state = .closed
            return .close(.keepaliveTimeout)
        }
        self.counter += 1
        let id = "cex-ping-\(self.counter)"
        self.outstandingPing = id
        return .write(AMIAction.ping.message(actionID: id))
    }

    /// The application is stopping: log off politely when logged in.
    public mutating func closeRequested() -> Action {
        switch self.state {
        case .ready:
            self.state = .closing
            return .write(AMIAction.logoff.message(actionID: Self.logoffID))
        case .closing:
            return .none
        case .awaitingBanner, .challenging, .authenticating:
            self.state = .closed
            return .close(nil)
        case .closed:
            return .none
        }
    }

    /// The TCP connection is gone: every action still waiting fails.
    public mutating func connectionClosed() -> Action {
        self.state = .closed
        self.outstandingPing = nil
        let ids = self.pending.keys.sorted()
        self.pending.removeAll()
        return ids.isEmpty ? .none : .failRequests(ids: ids, .connectionLost)
    }
}
