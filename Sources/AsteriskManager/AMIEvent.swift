/// The AMI events cex acts on, typed; every other event is kept as its packet.
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
        guard case .event(let name) = message.kind else { return nil }
        switch name.lowercased() {
        case "originateresponse": self = .originateResponse(OriginateResponse(message))
        case "newchannel": self = .newchannel(ChannelSnapshot(message))
        case "newstate": self = .newstate(ChannelSnapshot(message))
        case "dialbegin": self = .dialBegin(DialEvent(message))
        case "dialstate": self = .dialState(DialEvent(message))
        case "dialend": self = .dialEnd(DialEvent(message))
        case "hangup": self = .hangup(HangupEvent(message))
        case "varset": self = .varSet(VarSetEvent(message))
        case "userevent": self = .userEvent(UserEvent(message))
        case "fullybooted": self = .fullyBooted
        default: self = .other(name: name, message)
        }
    }

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

/// The channel fields that channel events carry (main/manager_channels.c), optionally with a prefix such as `Dest`.
public struct ChannelSnapshot: Sendable, Hashable {
    public var channel: String?
    public var state: ChannelState?
    public var stateDescription: String?
    public var callerIDNumber: String?
    public var callerIDName: String?
    public var connectedLineNumber: String?
    public var connectedLineName: String?
    public var context: String?
    public var exten: String?
    public var priority: String?
    public var uniqueID: String?
    public var linkedID: String?

    public init(_ message: AMIMessage, prefix: String = "") {
        self.channel = message[prefix + "Channel"]
        self.state = message[prefix + "ChannelState"].flatMap(Int.init).flatMap(ChannelState.init(rawValue:))
        self.stateDescription = message[prefix + "ChannelStateDesc"]
        self.callerIDNumber = message[prefix + "CallerIDNum"]
        self.callerIDName = message[prefix + "CallerIDName"]
        self.connectedLineNumber = message[prefix + "ConnectedLineNum"]
        self.connectedLineName = message[prefix + "ConnectedLineName"]
        self.context = message[prefix + "Context"]
        self.exten = message[prefix + "Exten"]
        self.priority = message[prefix + "Priority"]
        self.uniqueID = message[prefix + "Uniqueid"]
        self.linkedID = message[prefix + "Linkedid"]
    }
}

/// OriginateResponse: exactly one per asynchronous Originate.
public struct OriginateResponse: Sendable, Hashable {
    public var actionID: String?
    /// `Response: Success`.
    public var succeeded: Bool
    /// The new channel, or on failure the channel string that was requested.
    public var channel: String?
    public var reason: OriginateReason
    /// The Uniqueid: the Originate's ChannelId, even on failure.
    public var uniqueID: String?
    public var context: String?
    public var exten: String?
    public var application: String?
    public var data: String?
    public var callerIDNumber: String?
    public var callerIDName: String?

    public init(_ message: AMIMessage) {
        self.actionID = message["ActionID"]
        self.succeeded = message["Response"]?.lowercased() == "success"
        self.channel = message["Channel"]
        self.reason = OriginateReason(rawValue: message["Reason"].flatMap(Int.init) ?? 0)
        self.uniqueID = message["Uniqueid"].flatMap { $0 == "<unknown>" ? nil : $0 }
        self.context = message["Context"]
        self.exten = message["Exten"]
        self.application = message["Application"]
        self.data = message["Data"]
        self.callerIDNumber = message["CallerIDNum"]
        self.callerIDName = message["CallerIDName"]
    }
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
    public var caller: ChannelSnapshot?
    public var destination: ChannelSnapshot
    public var dialString: String?
    /// DialState: RINGING, PROCEEDING, PROGRESS. DialEnd: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL…
    public var dialStatus: String?

    public init(_ message: AMIMessage) {
        self.caller = message.contains("Uniqueid") ? ChannelSnapshot(message) : nil
        self.destination = ChannelSnapshot(message, prefix: "Dest")
        self.dialString = message["DialString"]
        self.dialStatus = message["DialStatus"]
    }
}

/// Hangup, with the Q.850 cause and the driver's own cause (PJSIP: the SIP status).
public struct HangupEvent: Sendable, Hashable {
    public var channel: ChannelSnapshot
    public var cause: Int?
    public var causeText: String?
    public var techCause: Int?

    public init(_ message: AMIMessage) {
        self.channel = ChannelSnapshot(message)
        self.cause = message["Cause"].flatMap(Int.init)
        self.causeText = message["Cause-txt"]
        self.techCause = message["TechCause"].flatMap(Int.init)
    }
}

/// VarSet (class dialplan), e.g. `AMDSTATUS` = `HUMAN`.
public struct VarSetEvent: Sendable, Hashable {
    public var channel: ChannelSnapshot
    public var variable: String
    public var value: String

    public init(_ message: AMIMessage) {
        self.channel = ChannelSnapshot(message)
        self.variable = message["Variable"] ?? ""
        self.value = message["Value"] ?? ""
    }
}

/// UserEvent from the dialplan's `UserEvent(name,k:v,…)`.
public struct UserEvent: Sendable, Hashable {
    /// The `UserEvent:` header.
    public var name: String
    /// The whole packet, for the event's own keys.
    public var fields: AMIMessage

    public init(_ message: AMIMessage) {
        self.name = message["UserEvent"] ?? ""
        self.fields = message
    }
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
