import AsteriskManager
import AudioSocket
import Foundation
import NIOConcurrencyHelpers

extension SimulatedAsterisk {
    /// The dial outcome of a behaviour: DialStatus, Q.850 cause, SIP status, and the Reason each flavour reports.
    struct FailureShape {
        var dialStatus: String
        var cause: Int
        var sipStatus: Int?
        var localReason: Int
        var pjsipReason: Int
    }

    static func failureShape(_ behaviour: CalleeBehaviour) -> FailureShape? {
        switch behaviour {
        case .busy: return FailureShape(dialStatus: "BUSY", cause: 17, sipStatus: 486, localReason: 5, pjsipReason: 0)
        case .congestion: return FailureShape(dialStatus: "CONGESTION", cause: 34, sipStatus: 503, localReason: 8, pjsipReason: 0)
        case .unallocated: return FailureShape(dialStatus: "CHANUNAVAIL", cause: 1, sipStatus: 404, localReason: 0, pjsipReason: 0)
        case .rejected: return FailureShape(dialStatus: "CHANUNAVAIL", cause: 21, sipStatus: 603, localReason: 8, pjsipReason: 0)
        case .noAnswer, .answer, .voicemail, .answerNotUp: return nil
        }
    }

    private func coinFlip() -> Bool {
        self.state.withLockedValue { Bool.random(using: &$0.random) }
    }

    /// Plays one Originate to its end and returns the OriginateResponse Reason.
    func runCall(_ spec: OriginateSpec, sendOriginateResponse: Bool) async -> Int {
        let destination = spec.destination
        let behaviour = self.configuration.directory[destination] ?? self.configuration.defaultBehaviour
        let hangup = HangupSignal()

        // Allocate the channel; a live channel with the same forced Uniqueid makes allocation fail.
        let allocation: (uniqueID: String, name: String)? = self.state.withLockedValue { state in
            state.counter += 1
            let uniqueID = spec.channelID ?? "1732500000.\(state.counter)"
            guard state.live[uniqueID] == nil else { return nil }
            let suffix = String(format: "%08x", state.counter)
            let name: String
            if spec.isLocal {
                name = "Local/\(destination)@\(spec.dialled.split(separator: "@").dropFirst().first ?? "default")-\(suffix);1"
            } else {
                let tech = spec.dialled.split(separator: "/").first.map(String.init) ?? "PJSIP"
                let endpoint = spec.dialled.split(separator: "@").dropFirst().first.map(String.init) ?? destination
                name = "\(tech)/\(endpoint)-\(suffix)"
            }
            state.live[uniqueID] = LiveCall(channelName: name, state: .down, hangup: hangup)
            return (uniqueID, name)
        }

        func originateResponse(success: Bool, reason: Int, channel: String, uniqueID: String) {
            guard sendOriginateResponse else { return }
            var fields: [(String, String)] = []
            if let id = spec.actionID { fields.append(("ActionID", id)) }
            fields += [("Response", success ? "Success" : "Failure"), ("Channel", channel)]
            switch spec.target {
            case .dialplan(let context, let exten, _): fields += [("Context", context), ("Exten", exten)]
            case .application(let name, let data): fields += [("Application", name), ("Data", data)]
            }
            let caller = spec.callerIDParts
            fields += [("Reason", String(reason)), ("Uniqueid", uniqueID), ("CallerIDNum", caller.number), ("CallerIDName", caller.name)]
            self.emit("call", "OriginateResponse", fields)
        }

        guard let allocation else {
            originateResponse(success: false, reason: 0, channel: spec.dialled, uniqueID: spec.channelID ?? "<unknown>")
            self.record(CallReport(uniqueID: spec.channelID ?? "", channel: spec.dialled, destination: destination, reason: 0, dialStatus: nil, cause: 0))
            return 0
        }
        let uniqueID = allocation.uniqueID
        let channelName = allocation.name
        defer { _ = self.state.withLockedValue { $0.live.removeValue(forKey: uniqueID) } }

        var channelState = ChannelState.down
        func snapshot(prefix: String = "", name: String = channelName, id: String = uniqueID) -> [(String, String)] {
            let caller = spec.callerIDParts
            let (context, exten, priority): (String, String, String)
            switch spec.target {
            case .dialplan(let c, let e, let p): (context, exten, priority) = (c, e, p)
            case .application: (context, exten, priority) = ("default", "s", "1")
            }
            return [
                (prefix + "Channel", name), (prefix + "ChannelState", String(channelState.rawValue)),
                (prefix + "ChannelStateDesc", Self.stateDescription(channelState)),
                (prefix + "CallerIDNum", caller.number), (prefix + "CallerIDName", caller.name),
                (prefix + "ConnectedLineNum", "<unknown>"), (prefix + "ConnectedLineName", "<unknown>"),
                (prefix + "Language", "en"), (prefix + "AccountCode", spec.account ?? ""),
                (prefix + "Context", context), (prefix + "Exten", exten), (prefix + "Priority", priority),
                (prefix + "Uniqueid", id), (prefix + "Linkedid", uniqueID),
            ]
        }
        func setState(_ state: ChannelState) {
            channelState = state
            self.state.withLockedValue { $0.live[uniqueID]?.state = state }
            self.emit("call", "Newstate", snapshot())
        }
        func hangupEvent(cause: Int, techCause: Int?, name: String = channelName, id: String = uniqueID) {
            var fields = snapshot(name: name, id: id) + [("Cause", String(cause)), ("Cause-txt", HangupCause.text(cause))]
            if let techCause { fields.append(("TechCause", String(techCause))) }
            self.emit("call", "Hangup", fields)
        }
        /// Waits `duration`, or less if the far end hangs up first; true when hung up.
        func wait(_ duration: Duration) async -> Bool {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try? await Task.sleep(for: duration)
                    return false
                }
                group.addTask {
                    await hangup.wait()
                    return hangup.fired
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
        }

        self.emit("call", "Newchannel", snapshot())
        self.emit("call", "DialBegin", snapshot(prefix: "Dest") + [("DialString", destination)])
        setState(.ringing)
        self.emit("call", "DialState", snapshot(prefix: "Dest") + [("DialStatus", "RINGING")])

        // Calls that never get answered.
        if let shape = Self.failureShape(behaviour) {
            _ = await wait(self.configuration.ringTime)
            self.emit("call", "DialEnd", snapshot(prefix: "Dest") + [("DialStatus", shape.dialStatus)])
            let reason = spec.isLocal ? shape.localReason : shape.pjsipReason
            let hangups = {
                if spec.isLocal {
                    // The far leg carries the cause; ours ends with cause 0.
                    hangupEvent(cause: shape.cause, techCause: nil, name: channelName.replacingOccurrences(of: ";1", with: ";2"), id: uniqueID + ";2")
                    hangupEvent(cause: 0, techCause: nil)
                } else {
                    hangupEvent(cause: shape.cause, techCause: shape.sipStatus)
                }
            }
            // OriginateResponse may come before the Hangup events of a failed call.
            if self.coinFlip() {
                originateResponse(success: false, reason: reason, channel: spec.dialled, uniqueID: uniqueID)
                hangups()
            } else {
                hangups()
                originateResponse(success: false, reason: reason, channel: spec.dialled, uniqueID: uniqueID)
            }
            self.record(CallReport(uniqueID: uniqueID, channel: channelName, destination: destination, reason: reason, dialStatus: shape.dialStatus, cause: shape.cause))
            return reason
        }
        if case .noAnswer = behaviour {
            let hungUp = await wait(spec.timeout)
            let status = hungUp ? "CANCEL" : "NOANSWER"
            self.emit("call", "DialEnd", snapshot(prefix: "Dest") + [("DialStatus", status)])
            let cause = hungUp ? HangupCause.normalClearing : HangupCause.noAnswer
            hangupEvent(cause: cause, techCause: nil)
            let reason = hungUp ? 1 : 3
            originateResponse(success: false, reason: reason, channel: spec.dialled, uniqueID: uniqueID)
            self.record(CallReport(uniqueID: uniqueID, channel: channelName, destination: destination, reason: reason, dialStatus: status, cause: cause))
            return reason
        }

        // Answered.
        if await wait(self.configuration.ringTime) {
            self.emit("call", "DialEnd", snapshot(prefix: "Dest") + [("DialStatus", "CANCEL")])
            hangupEvent(cause: HangupCause.normalClearing, techCause: nil)
            originateResponse(success: false, reason: 1, channel: spec.dialled, uniqueID: uniqueID)
            self.record(CallReport(uniqueID: uniqueID, channel: channelName, destination: destination, reason: 1, dialStatus: "CANCEL", cause: 16))
            return 1
        }
        self.emit("call", "DialEnd", snapshot(prefix: "Dest") + [("DialStatus", "ANSWER")])
        setState(.up)
        for (name, value) in spec.variables {
            self.emit("dialplan", "VarSet", snapshot() + [("Variable", name), ("Value", value)])
        }

        // Where the answered channel goes: AudioSocket(uuid,host:port), directly or through the dialplan.
        var audioSocket: (callID: UUID, host: String, port: Int)?
        var runsAMD = false
        switch spec.target {
        case .application(let name, let data) where name.lowercased() == "audiosocket":
            let parts = data.split(separator: ",", maxSplits: 1).map(String.init)
            if parts.count == 2, let callID = UUID(uuidString: parts[0]), let colon = parts[1].lastIndex(of: ":"),
                let port = Int(parts[1][parts[1].index(after: colon)...])
            {
                audioSocket = (callID, String(parts[1][..<colon]), port)
            }
        case .application:
            break
        case .dialplan(let contextName, _, _):
            if let context = self.configuration.contexts[contextName] {
                runsAMD = context.runsAMD
                let value = spec.variables.last { $0.0 == context.callIDVariable }?.1
                if let value, let callID = UUID(uuidString: value) {
                    audioSocket = (callID, context.engineHost, context.enginePort)
                }
            }
        }

        let respondFirst = self.coinFlip()
        if respondFirst { originateResponse(success: true, reason: 4, channel: channelName, uniqueID: uniqueID) }

        var recording: CallerRecording?
        var cause = HangupCause.normalClearing
        var isMachine = false
        if case .voicemail = behaviour { isMachine = true }
        if runsAMD {
            let status = isMachine ? "MACHINE" : "HUMAN"
            self.emit("dialplan", "VarSet", snapshot() + [("Variable", "AMDSTATUS"), ("Value", status)])
            self.emit("dialplan", "VarSet", snapshot() + [("Variable", "AMDCAUSE"), ("Value", isMachine ? "LONGGREETING-2000-1500" : "HUMAN-1-1")])
            self.emit("user", "UserEvent", snapshot() + [("UserEvent", "AIAmd"), ("CallUUID", audioSocket.map { $0.callID.uuidString.lowercased() } ?? ""), ("Status", status)])
        }
        if runsAMD && isMachine {
            // The dialplan hangs up on machines.
        } else if let audioSocket {
            let script: CallerScript
            switch behaviour {
            case .answer(let s), .voicemail(let s): script = s
            default: script = .listen
            }
            let caller = SimulatedCaller(
                host: audioSocket.host,
                port: audioSocket.port,
                callID: audioSocket.callID,
                script: script,
                inactivityLimit: self.configuration.audioInactivityLimit,
                notUp: behaviour == .answerNotUp
            )
            if !respondFirst { originateResponse(success: true, reason: 4, channel: channelName, uniqueID: uniqueID) }
            let (hangupStream, stopBridge) = hangup.stream()
            let result = await caller.run(eventLoopGroup: self.group, hangupSignal: hangupStream)
            stopBridge()
            recording = result
            if result.ending == .connectFailed { cause = HangupCause.networkOutOfOrder }
        }
        if !respondFirst && recording == nil { originateResponse(success: true, reason: 4, channel: channelName, uniqueID: uniqueID) }
        hangupEvent(cause: cause, techCause: nil)
        self.record(CallReport(uniqueID: uniqueID, channel: channelName, destination: destination, reason: 4, dialStatus: "ANSWER", cause: cause, recording: recording))
        return 4
    }

    static func stateDescription(_ state: ChannelState) -> String {
        switch state {
        case .down: return "Down"
        case .reserved: return "Rsrvd"
        case .offHook: return "OffHook"
        case .dialing: return "Dialing"
        case .ring: return "Ring"
        case .ringing: return "Ringing"
        case .up: return "Up"
        case .busy: return "Busy"
        case .dialingOffHook: return "Dialing Offhook"
        case .preRing: return "Pre-ring"
        }
    }

    func record(_ report: CallReport) {
        let subscribers = self.state.withLockedValue { state in
            state.reports.append(report)
            return Array(state.reportSubscribers.values)
        }
        for subscriber in subscribers { subscriber.yield(report) }
    }
}
