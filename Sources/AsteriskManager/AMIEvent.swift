/// The AMI events cex acts on, typed; every other event is kept as its packet.
///
/// Typing is cheap: each typed event is a view over the decoded packet and reads its
/// fields on access, so an event that nobody looks at costs no strings.
public enum AMIEvent: Sendable, Hashable {
    case originateResponse(OriginateResponse)
    case newchannel(ChannelSnapshot)
    case newstate(ChannelSnapshot)
    case dialBegin(DialEvent)
    case dialState(DialEvent)
    case dialEnd(DialEvent)
    case hangup(HangupEvent)
    case varSet(VarSetEvent)
    case userEvent(UserEvent)
    case fullyBooted
    /// Any other event, e.g. `Status`, `DTMFBegin`, `PeerStatus`.
    case other(name: String, AMIMessage)

    /// Types an `Event:` packet; nil when the packet is not an event.
    public init?(_ message: AMIMessage) {
        guard let first = message.spans.first, message.nameMatches(first, "Event") else { return nil }
        switch Self.typedNames.firstIndex(where: { message.valueMatches(first, $0) }) {
        case 0: self = .originateResponse(OriginateResponse(message))
        case 1: self = .newchannel(ChannelSnapshot(message))
        case 2: self = .newstate(ChannelSnapshot(message))
        case 3: self = .dialBegin(DialEvent(message))
        case 4: self = .dialState(DialEvent(message))
        case 5: self = .dialEnd(DialEvent(message))
        case 6: self = .hangup(HangupEvent(message))
        case 7: self = .varSet(VarSetEvent(message))
        case 8: self = .userEvent(UserEvent(message))
        case 9: self = .fullyBooted
        default: self = .other(name: message.string(from: first.valueStart, to: first.valueEnd), message)
        }
    }

    /// The event names typed above, in the order of `init`'s cases.
    private static let typedNames = [
        "OriginateResponse", "Newchannel", "Newstate", "DialBegin", "DialState", "DialEnd", "Hangup", "VarSet", "UserEvent",
        "FullyBooted",
    ]

    /// The Uniqueid the event is about: for an originated call, the Originate's `ChannelId`.
    /// Dial events name the dialled channel (`DestUniqueid`).
    public var uniqueID: String? {
        switch self {
        case .originateResponse(let event): return event.uniqueID
        case .newchannel(let snapshot), .newstate(let snapshot): return snapshot.uniqueID
        case .dialBegin(let event), .dialState(let event), .dialEnd(let event): return event.destination.uniqueID
        case .hangup(let event): return event.channel.uniqueID
        case .varSet(let event): return event.channel.uniqueID
        case .userEvent(let event): return event.fields["Uniqueid"]
        case .fullyBooted: return nil
        case .other(_, let message): return message["Uniqueid"]
        }
    }
}

/// Asterisk channel states (`ChannelState`).
public enum ChannelState: Int, Sendable, Hashable {
    case down = 0
    case reserved = 1
    case offHook = 2
    case dialing = 3
    case ring = 4
    case ringing = 5
    case up = 6
    case busy = 7
    case dialingOffHook = 8
    case preRing = 9
}

/// The channel fields that channel events carry (main/manager_channels.c), read from the
/// packet on access: the plain fields, or the `Dest`-prefixed ones of a dial event.
public struct ChannelSnapshot: Sendable, Hashable {
    /// The packet the fields are read from.
    public let message: AMIMessage
    /// Whether the fields carry the `Dest` prefix.
    public let isDestination: Bool

    public init(_ message: AMIMessage, destination: Bool = false) {
        self.message = message
        self.isDestination = destination
    }

    public var channel: String? { self.field("Channel") }
    public var state: ChannelState? { self.field("ChannelState").flatMap(Int.init).flatMap(ChannelState.init(rawValue:)) }
    public var stateDescription: String? { self.field("ChannelStateDesc") }
    public var callerIDNumber: String? { self.field("CallerIDNum") }
    public var callerIDName: String? { self.field("CallerIDName") }
    public var connectedLineNumber: String? { self.field("ConnectedLineNum") }
    public var connectedLineName: String? { self.field("ConnectedLineName") }
    public var context: String? { self.field("Context") }
    public var exten: String? { self.field("Exten") }
    public var priority: String? { self.field("Priority") }
    public var uniqueID: String? { self.field("Uniqueid") }
    public var linkedID: String? { self.field("Linkedid") }

    private func field(_ name: String) -> String? {
        self.message[self.isDestination ? "Dest" + name : name]
    }
}

/// OriginateResponse: exactly one per asynchronous Originate.
public struct OriginateResponse: Sendable, Hashable {
    /// The packet the fields are read from.
    public let message: AMIMessage

    public init(_ message: AMIMessage) { self.message = message }

    public var actionID: String? { self.message["ActionID"] }
    /// `Response: Success`.
    public var succeeded: Bool { self.message["Response"]?.lowercased() == "success" }
    /// The new channel, or on failure the channel string that was requested.
    public var channel: String? { self.message["Channel"] }
    public var reason: OriginateReason { OriginateReason(rawValue: self.message["Reason"].flatMap(Int.init) ?? 0) }
    /// The Uniqueid: the Originate's ChannelId, even on failure.
    public var uniqueID: String? { self.message["Uniqueid"].flatMap { $0 == "<unknown>" ? nil : $0 } }
    public var context: String? { self.message["Context"] }
    public var exten: String? { self.message["Exten"] }
    public var application: String? { self.message["Application"] }
    public var data: String? { self.message["Data"] }
    public var callerIDNumber: String? { self.message["CallerIDNum"] }
    public var callerIDName: String? { self.message["CallerIDName"] }
}

/// OriginateResponse `Reason`: the AST_CONTROL value main/dial.c recorded (`pbx_dial_reason`).
public struct OriginateReason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Failure or unknown. PJSIP reports busy and rejected calls this way too.
    public static let failure = Self(rawValue: 0)
    public static let hangup = Self(rawValue: 1)
    /// Rang without an answer until the Originate timeout.
    public static let noAnswer = Self(rawValue: 3)
    public static let answered = Self(rawValue: 4)
    public static let busy = Self(rawValue: 5)
    public static let congestion = Self(rawValue: 8)

    public var description: String {
        switch self.rawValue {
        case 0: return "failure"
        case 1: return "hangup"
        case 3: return "no answer"
        case 4: return "answered"
        case 5: return "busy"
        case 8: return "congestion"
        default: return "reason \(self.rawValue)"
        }
    }
}

/// DialBegin, DialState, DialEnd. With Originate there is no calling channel, only `Dest*` fields.
public struct DialEvent: Sendable, Hashable {
    /// The packet the fields are read from.
    public let message: AMIMessage

    public init(_ message: AMIMessage) { self.message = message }

    public var caller: ChannelSnapshot? { self.message.contains("Uniqueid") ? ChannelSnapshot(self.message) : nil }
    public var destination: ChannelSnapshot { ChannelSnapshot(self.message, destination: true) }
    public var dialString: String? { self.message["DialString"] }
    /// DialState: RINGING, PROCEEDING, PROGRESS. DialEnd: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL…
    public var dialStatus: String? { self.message["DialStatus"] }
}

/// Hangup, with the Q.850 cause and the driver's own cause (PJSIP: the SIP status).
public struct HangupEvent: Sendable, Hashable {
    /// The packet the fields are read from.
    public let message: AMIMessage

    public init(_ message: AMIMessage) { self.message = message }

    public var channel: ChannelSnapshot { ChannelSnapshot(self.message) }
    public var cause: Int? { self.message["Cause"].flatMap(Int.init) }
    public var causeText: String? { self.message["Cause-txt"] }
    public var techCause: Int? { self.message["TechCause"].flatMap(Int.init) }
}

/// VarSet (class dialplan), e.g. `AMDSTATUS` = `HUMAN`.
public struct VarSetEvent: Sendable, Hashable {
    /// The packet the fields are read from.
    public let message: AMIMessage

    public init(_ message: AMIMessage) { self.message = message }

    public var channel: ChannelSnapshot { ChannelSnapshot(self.message) }
    public var variable: String { self.message["Variable"] ?? "" }
    public var value: String { self.message["Value"] ?? "" }
}

/// UserEvent from the dialplan's `UserEvent(name,k:v,…)`.
public struct UserEvent: Sendable, Hashable {
    /// The whole packet, for the event's own keys.
    public let fields: AMIMessage

    public init(_ message: AMIMessage) { self.fields = message }

    /// The `UserEvent:` header.
    public var name: String { self.fields["UserEvent"] ?? "" }
}

/// Q.850 hangup causes that matter to dial outcomes (include/asterisk/causes.h).
public enum HangupCause {
    public static let unallocated = 1
    public static let noRoute = 3
    public static let normalClearing = 16
    public static let userBusy = 17
    public static let noUserResponse = 18
    public static let noAnswer = 19
    public static let callRejected = 21
    public static let destinationOutOfOrder = 27
    public static let invalidNumberFormat = 28
    public static let congestion = 34
    public static let networkOutOfOrder = 38
    public static let temporaryFailure = 41

    /// `ast_cause2str`.
    public static func text(_ cause: Int) -> String {
        switch cause {
        case 0: return "Unknown"
        case 1: return "Unallocated (unassigned) number"
        case 3: return "No route to destination"
        case 16: return "Normal Clearing"
        case 17: return "User busy"
        case 18: return "No user responding"
        case 19: return "User alerting, no answer"
        case 21: return "Call Rejected"
        case 27: return "Destination out of order"
        case 28: return "Invalid number format"
        case 34: return "Circuit/channel congestion"
        case 38: return "Network out of order"
        case 41: return "Temporary failure"
        default: return "Unknown"
        }
    }
}
