import AsteriskManager
import CampaignCore
import Foundation

extension CallProgress {
    /// What an AMI event says about the call whose Uniqueid (our ChannelId) is `callID`; nil
    /// when the event is about another call or says nothing that matters.
    public init?(_ event: AMIEvent, callID: String) {
        guard let id = event.uniqueID, id == callID || id.hasPrefix(callID + ";") else { return nil }
        switch event {
        case .dialState(let dial) where dial.destination.state == .ringing:
            self = .ringing
        case .newstate(let channel) where id == callID:
            switch channel.state {
            case .ringing?: self = .ringing
            case .up?: self = .answered
            default: return nil
            }
        case .dialEnd(let dial):
            guard let status = dial.dialStatus else { return nil }
            self = .dialEnd(status: status)
        case .originateResponse(let response):
            self = .originateResponse(reason: response.reason.rawValue)
        case .hangup(let hangup):
            self = .hangup(cause: hangup.cause, techCause: hangup.techCause, ownLeg: id == callID)
        // AMD() sets both variables; the VarSet events carry them whatever the dialplan reports.
        case .varSet(let variable) where variable.variable == "AMDSTATUS":
            self = .amd(status: variable.value, cause: nil)
        case .varSet(let variable) where variable.variable == "AMDCAUSE":
            self = .amd(status: nil, cause: variable.value)
        // The README's UserEvent, or any whose name says AMD (`AIAmd`, `AMD`, `amd-result`).
        case .userEvent(let user) where user.name.lowercased().contains("amd"):
            guard let status = user.fields["Status"] ?? user.fields["AMDSTATUS"] else { return nil }
            self = .amd(status: status, cause: user.fields["Cause"] ?? user.fields["AMDCAUSE"])
        default:
            return nil
        }
    }
}

extension CallTrace {
    /// Folds in an AMI event; false when it is not about this call.
    @discardableResult
    public mutating func apply(_ event: AMIEvent, callID: String, at time: Date = Date()) -> Bool {
        guard let progress = CallProgress(event, callID: callID) else { return false }
        self.apply(progress, at: time)
        return true
    }
}
