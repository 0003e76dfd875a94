/// The reply to an action: the `Response:` packet, plus for list actions (Status,
/// CoreShowChannels…) the events that followed it, up to and including the `EventList: Complete` one.
public struct AMIResponse: Sendable, Hashable {
    public var message: AMIMessage
    public var events: [AMIMessage]

    public init(message: AMIMessage, events: [AMIMessage] = []) {
        self.message = message
        self.events = events
    }

    /// `Success`, `Error`, `Goodbye` or `Follows`.
    public var status: String { self.message["Response"] ?? "" }
    public var isSuccess: Bool { self.status.lowercased() == "success" }
    /// Asterisk's `Message:` text, e.g. `Originate successfully queued`.
    public var text: String? { self.message["Message"] }
    public var actionID: String? { self.message["ActionID"] }

    /// The list's items: the events before the closing `…Complete` one.
    public var items: [AMIMessage] {
        guard let last = self.events.last, last["EventList"]?.lowercased() == "complete" else { return self.events }
        return Array(self.events.dropLast())
    }

    /// Returns self when the action succeeded; otherwise throws `AMIClientError.actionFailed` with Asterisk's message.
    @discardableResult
    public func requireSuccess() throws -> AMIResponse {
        guard self.isSuccess else { throw AMIClientError.actionFailed(self.text ?? self.status) }
        return self
    }
}
