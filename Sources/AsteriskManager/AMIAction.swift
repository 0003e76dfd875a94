import Crypto

/// An AMI request, validated when it is built so that nothing malformed reaches Asterisk.
///
/// `ActionID` is set by the client when it sends the action, unless the action already has one
/// (an Originate uses its call's UUID).
public struct AMIAction: Sendable, Hashable {
    /// The `Action:` value, e.g. `Originate`.
    public let name: String
    /// The `ActionID:` to send; the client assigns one when nil.
    public var actionID: String?
    /// The headers after `Action` and `ActionID`, in order.
    public let fields: AMIMessage

    /// Builds any action; names and values are checked for line breaks.
    public init(name: String, actionID: String? = nil, fields: [(String, String)] = []) throws {
        for (key, value) in fields + [("Action", name)] + (actionID.map { [("ActionID", $0)] } ?? []) {
            try AMIActionError.checkHeader(key, value)
        }
        self.name = name
        self.actionID = actionID
        self.fields = AMIMessage(fields)
    }

    /// The packet to write, with `Action` first and `ActionID` second.
    public func message(actionID: String) -> AMIMessage {
        var message = AMIMessage([("Action", self.name), ("ActionID", actionID)])
        for (key, value) in self.fields.headers {
            message.append(key, value)
        }
        return message
    }
}

// MARK: - The actions cex uses

extension AMIAction {
    /// Plain-text login. `events` sets the session's event mask (absent: Asterisk's default, all).
    public static func login(username: String, secret: String, events: EventMask? = nil) throws -> AMIAction {
        var fields = [("Username", username), ("Secret", secret)]
        if let events { fields.append(("Events", events.headerValue)) }
        return try AMIAction(name: "Login", fields: fields)
    }

    /// Login with the MD5 answer to a `Challenge`: `Key` is hex(md5(challenge + secret)), lowercase.
    public static func login(username: String, challenge: String, secret: String, events: EventMask? = nil) throws -> AMIAction {
        var fields = [("AuthType", "MD5"), ("Username", username), ("Key", Self.md5Key(challenge: challenge, secret: secret))]
        if let events { fields.append(("Events", events.headerValue)) }
        return try AMIAction(name: "Login", fields: fields)
    }

    /// Asks for an MD5 challenge before logging in.
    public static var challenge: AMIAction { try! AMIAction(name: "Challenge", fields: [("AuthType", "MD5")]) }

    /// Answered with `Ping: Pong`.
    public static var ping: AMIAction { try! AMIAction(name: "Ping") }

    /// Answered with `Response: Goodbye`; then the server closes the connection.
    public static var logoff: AMIAction { try! AMIAction(name: "Logoff") }

    /// Changes the session's event mask; answered with `Events: On|Off`.
    public static func events(_ mask: EventMask) -> AMIAction {
        try! AMIAction(name: "Events", fields: [("EventMask", mask.headerValue)])
    }

    /// Hangs a channel up, optionally with a Q.850 cause.
    public static func hangup(channel: String, cause: Int? = nil) throws -> AMIAction {
        var fields = [("Channel", channel)]
        if let cause { fields.append(("Cause", String(cause))) }
        return try AMIAction(name: "Hangup", fields: fields)
    }

    /// Channel status: a list response, one `Status` event per channel, then `StatusComplete`.
    public static func status(channel: String? = nil) throws -> AMIAction {
        try AMIAction(name: "Status", fields: channel.map { [("Channel", $0)] } ?? [])
    }

    /// All live channels: a list response, one `CoreShowChannel` event each, then `CoreShowChannelsComplete`.
    public static var coreShowChannels: AMIAction { try! AMIAction(name: "CoreShowChannels") }

    /// The PBX's status; `CoreStartupDate` and `CoreStartupTime` tell one run of Asterisk from the next.
    public static var coreStatus: AMIAction { try! AMIAction(name: "CoreStatus") }

    /// An asynchronous Originate (main/manager.c `action_originate`).
    public static func originate(_ originate: Originate) throws -> AMIAction {
        try originate.validate()
        return try AMIAction(name: "Originate", actionID: originate.actionID, fields: originate.fields)
    }

    /// The MD5 login key: hex(md5(challenge + secret)), lowercase.
    public static func md5Key(challenge: String, secret: String) -> String {
        Insecure.MD5.hash(data: Array((challenge + secret).utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }
}

/// The session event mask (`strings_to_mask` in main/manager.c).
public enum EventMask: Sendable, Hashable {
    /// No events.
    case off
    /// Every class the user may read.
    case on
    /// Only these classes, e.g. `call`, `dialplan`, `user`, `system`.
    case classes([String])

    var headerValue: String {
        switch self {
        case .off: return "off"
        case .on: return "on"
        case .classes(let classes): return classes.joined(separator: ",")
        }
    }
}

/// The fields of an Originate (PROTOCOLS.md §1.5); always sent with `Async: true`.
public struct Originate: Sendable, Hashable {
    /// Where the answered channel goes: a dialplan location, or an application run directly.
    public enum Target: Sendable, Hashable {
        case dialplan(context: String, exten: String, priority: String)
        case application(name: String, data: String)
    }

    /// The channel to dial, e.g. `PJSIP/+15551234567@trunk` or `Local/100@callees`.
    public var channel: String
    public var target: Target
    /// Time to answer in milliseconds (Asterisk's default is 30,000).
    public var timeoutMilliseconds: Int?
    /// `"Name" <number>`: caller ID and connected line.
    public var callerID: String?
    /// Channel variables, in order; values may not contain commas (Asterisk splits on them).
    public var variables: [(name: String, value: String)]
    public var account: String?
    /// e.g. `["ulaw", "alaw"]`.
    public var codecs: [String]
    /// Forces the channel's Uniqueid (at most 149 characters).
    public var channelID: String?
    /// The ActionID, echoed in the reply and in OriginateResponse.
    public var actionID: String?

    public init(
        channel: String,
        target: Target,
        timeoutMilliseconds: Int? = nil,
        callerID: String? = nil,
        variables: [(name: String, value: String)] = [],
        account: String? = nil,
        codecs: [String] = [],
        channelID: String? = nil,
        actionID: String? = nil
    ) {
        self.channel = channel
        self.target = target
        self.timeoutMilliseconds = timeoutMilliseconds
        self.callerID = callerID
        self.variables = variables
        self.account = account
        self.codecs = codecs
        self.channelID = channelID
        self.actionID = actionID
    }

    /// The most characters Asterisk accepts in a forced Uniqueid (`AST_MAX_PUBLIC_UNIQUEID`).
    public static let maximumChannelIDLength = 149

    func validate() throws {
        guard !self.channel.isEmpty else { throw AMIActionError(field: "Channel", problem: .missing) }
        guard self.channel.contains("/") else { throw AMIActionError(field: "Channel", problem: .invalidChannel) }
        switch self.target {
        case .dialplan(let context, let exten, let priority):
            for (field, value) in [("Context", context), ("Exten", exten), ("Priority", priority)] where value.isEmpty {
                throw AMIActionError(field: field, problem: .missing)
            }
        case .application(let name, _):
            guard !name.isEmpty else { throw AMIActionError(field: "Application", problem: .missing) }
        }
        if let timeout = self.timeoutMilliseconds, timeout <= 0 {
            throw AMIActionError(field: "Timeout", problem: .notPositive)
        }
        for variable in self.variables {
            guard !variable.name.isEmpty, !variable.name.contains("="), !variable.name.contains(",") else {
                throw AMIActionError(field: "Variable", problem: .invalidVariableName)
            }
            guard !variable.value.contains(",") else {
                throw AMIActionError(field: "Variable \(variable.name)", problem: .commaInVariable)
            }
        }
        if let channelID = self.channelID {
            guard !channelID.isEmpty, channelID.count <= Self.maximumChannelIDLength else {
                throw AMIActionError(field: "ChannelId", problem: .tooLong(Self.maximumChannelIDLength))
            }
        }
        for codec in self.codecs where codec.isEmpty || codec.contains(",") {
            throw AMIActionError(field: "Codecs", problem: .invalidCodec)
        }
    }

    var fields: [(String, String)] {
        var fields = [("Channel", self.channel)]
        switch self.target {
        case .dialplan(let context, let exten, let priority):
            fields += [("Context", context), ("Exten", exten), ("Priority", priority)]
        case .application(let name, let data):
            fields += [("Application", name), ("Data", data)]
        }
        if let timeout = self.timeoutMilliseconds { fields.append(("Timeout", String(timeout))) }
        if let callerID = self.callerID { fields.append(("CallerID", callerID)) }
        for variable in self.variables { fields.append(("Variable", "\(variable.name)=\(variable.value)")) }
        if let account = self.account { fields.append(("Account", account)) }
        if !self.codecs.isEmpty { fields.append(("Codecs", self.codecs.joined(separator: ","))) }
        if let channelID = self.channelID { fields.append(("ChannelId", channelID)) }
        fields.append(("Async", "true"))
        return fields
    }

    public static func == (lhs: Originate, rhs: Originate) -> Bool {
        lhs.fields.elementsEqual(rhs.fields, by: ==) && lhs.actionID == rhs.actionID
    }

    public func hash(into hasher: inout Hasher) {
        for (key, value) in self.fields {
            hasher.combine(key)
            hasher.combine(value)
        }
        hasher.combine(self.actionID)
    }
}

/// An action that cannot be sent as built. Names the field, never its value.
public struct AMIActionError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Problem: Hashable, Sendable {
        case missing
        case invalidChannel
        case notPositive
        case invalidVariableName
        case commaInVariable
        case tooLong(Int)
        case invalidCodec
        case lineBreak
    }

    /// The header, e.g. `Channel` or `Variable CEX_CALL_ID`.
    public let field: String
    public let problem: Problem

    public var description: String {
        switch self.problem {
        case .missing: return "AMI action field \(self.field) is missing"
        case .invalidChannel: return "AMI action field \(self.field) needs TECH/resource, e.g. PJSIP/+15551234567@trunk"
        case .notPositive: return "AMI action field \(self.field) must be a positive number"
        case .invalidVariableName: return "AMI variable names must be non-empty and contain no '=' or ','"
        case .commaInVariable: return "AMI action field \(self.field) contains a comma, which Asterisk would split into two variables"
        case .tooLong(let limit): return "AMI action field \(self.field) must be 1 to \(limit) characters"
        case .invalidCodec: return "AMI action field \(self.field) has an empty codec name or a comma inside one"
        case .lineBreak: return "AMI action field \(self.field) contains a line break"
        }
    }

    static func checkHeader(_ key: String, _ value: String) throws {
        if key.contains(where: \.isNewline) || value.contains(where: \.isNewline) || key.isEmpty {
            throw AMIActionError(field: key.isEmpty ? "(empty name)" : key.filter { !$0.isNewline }, problem: .lineBreak)
        }
    }
}
