import NIOCore

/// Free connections kept for reuse, each read and written on an event loop. A caller on one of
/// the loops gets a connection there when there is one: its bytes then never cross a thread.
/// Failing that it gets another loop's (one thread hop each way is far cheaper than a new
/// connection) and is told to open one on its own loop for next time, once per loop until
/// `opened(on:)`.
public struct LoopPreferringPool<Connection: AnyObject> {
    public var idle: [Connection] = []
    /// Loops a connection is being opened on, ahead of their next use.
    private var opening: Set<ObjectIdentifier> = []

    public init() {}

    /// A free connection, on `loop` when one is there; `openAhead`: open one on `loop`, then
    /// call `opened(on:)`.
    public mutating func take(
        preferring loop: (any EventLoop)?, loopOf: (Connection) -> (any EventLoop)?
    ) -> (connection: Connection?, openAhead: Bool) {
        guard let loop else { return (self.idle.popLast(), false) }
        if let index = self.idle.lastIndex(where: { loopOf($0) === loop }) { return (self.idle.remove(at: index), false) }
        guard let other = self.idle.popLast() else { return (nil, false) }
        return (other, self.opening.insert(ObjectIdentifier(loop)).inserted)
    }

    /// The connection `take` asked for on `loop` was opened (or failed to be).
    public mutating func opened(on loop: any EventLoop) {
        self.opening.remove(ObjectIdentifier(loop))
    }
}

extension LoopPreferringPool: Sendable where Connection: Sendable {}
