import Testing

@testable import AsteriskManager

@Suite struct AMIConnectionStateMachineTests {
    typealias Machine = AMIConnectionStateMachine

    func readyMachine() -> Machine {
        var machine = Machine(configuration: .init(username: "ai", secret: "s3cret", events: .classes(["call"])))
        _ = machine.bannerReceived("Asterisk Call Manager/11.0.0")
        #expect(machine.messageReceived(["Response": "Success", "ActionID": "cex-login", "Message": "Authentication accepted"]) == .authenticated)
        return machine
    }

    @Test func bannerTriggersPlainLogin() {
        var machine = Machine(configuration: .init(username: "ai", secret: "s3cret", events: .classes(["call", "dialplan"])))
        #expect(
            machine.bannerReceived("Asterisk Call Manager/11.0.0")
                == .write(AMIMessage([("Action", "Login"), ("ActionID", "cex-login"), ("Username", "ai"), ("Secret", "s3cret"), ("Events", "call,dialplan")]))
        )
        #expect(!machine.isReady)
        #expect(machine.messageReceived(["Response": "Success", "ActionID": "cex-login"]) == .authenticated)
        #expect(machine.isReady)
    }

    @Test func theLoginDeadlineClosesASilentConnectionAndNothingOnceLoggedIn() {
        var silent = Machine(configuration: .init(username: "ai", secret: "s3cret"))
        #expect(silent.loginTimedOut() == .close(.loginTimeout(stage: "banner")))
        var bannerOnly = Machine(configuration: .init(username: "ai", secret: "s3cret"))
        _ = bannerOnly.bannerReceived("Asterisk Call Manager/11.0.0")
        #expect(bannerOnly.loginTimedOut() == .close(.loginTimeout(stage: "login reply")))
        #expect(!AMIClientError.loginTimeout(stage: "banner").isFinal, "a stalled PBX may come back: retried")
        var ready = self.readyMachine()
        #expect(ready.loginTimedOut() == .none)
        #expect(ready.isReady)
    }

    @Test func refusedLoginIsFinal() {
        var machine = Machine(configuration: .init(username: "ai", secret: "wrong"))
        _ = machine.bannerReceived("Asterisk Call Manager/11.0.0")
        #expect(
            machine.messageReceived(["Response": "Error", "ActionID": "cex-login", "Message": "Authentication failed"])
                == .authenticationFailed("Authentication failed")
        )
        #expect(machine.sendRequested(.ping, id: "x") == .failRequest(id: "x", .notConnected))
    }

    @Test func md5LoginAnswersTheChallengeWithoutSendingTheSecret() {
        var machine = Machine(configuration: .init(username: "ai", secret: "s3cret", authentication: .md5))
        #expect(machine.bannerReceived("Asterisk Call Manager/11.0.0") == .write(["Action": "Challenge", "ActionID": "cex-challenge", "AuthType": "MD5"]))
        let action = machine.messageReceived(["Response": "Success", "ActionID": "cex-challenge", "Challenge": "1234567890"])
        guard case .write(let login) = action else {
            Issue.record("expected the Login to be written, got \(action)")
            return
        }
        #expect(login["Key"] == "f636d28296db47233db6b0bdeb2442a7")
        #expect(login["Secret"] == nil)
        #expect(machine.messageReceived(["Response": "Success", "ActionID": "cex-login"]) == .authenticated)
    }

    @Test func actionsBeforeLoginFailAtOnce() {
        var machine = Machine(configuration: .init(username: "ai", secret: "s3cret"))
        #expect(machine.sendRequested(.ping, id: "p") == .failRequest(id: "p", .notConnected))
    }

    @Test func repliesCompleteTheActionWithTheSameActionID() {
        var machine = self.readyMachine()
        #expect(machine.sendRequested(.ping, id: "a1") == .write(["Action": "Ping", "ActionID": "a1"]))
        #expect(machine.sendRequested(.logoff, id: "a2") == .write(["Action": "Logoff", "ActionID": "a2"]))
        #expect(machine.sendRequested(.ping, id: "a1") == .failRequest(id: "a1", .duplicateActionID))
        let reply: AMIMessage = ["Response": "Success", "ActionID": "a2", "Message": "x"]
        #expect(machine.messageReceived(reply) == .succeedRequest(id: "a2", AMIResponse(message: reply)))
        // A reply for nobody is ignored.
        #expect(machine.messageReceived(["Response": "Success", "ActionID": "zzz"]) == .none)
    }

    @Test func gathersEventListsIntoOneResult() {
        var machine = self.readyMachine()
        _ = machine.sendRequested(try! .status(), id: "s1")
        let start: AMIMessage = ["Response": "Success", "ActionID": "s1", "EventList": "start", "Message": "Channel status will follow"]
        #expect(machine.messageReceived(start) == .none)
        let item: AMIMessage = ["Event": "Status", "ActionID": "s1", "Channel": "PJSIP/trunk-1"]
        #expect(machine.messageReceived(item) == .none)
        // Unrelated events still flow while the list is open.
        let newchannel: AMIMessage = ["Event": "Newchannel", "Uniqueid": "u9"]
        #expect(machine.messageReceived(newchannel) == .deliverEvent(AMIEvent(newchannel)!))
        let complete: AMIMessage = ["Event": "StatusComplete", "ActionID": "s1", "EventList": "Complete", "ListItems": "1"]
        let response = AMIResponse(message: start, events: [item, complete])
        #expect(machine.messageReceived(complete) == .succeedRequest(id: "s1", response))
        #expect(response.items == [item])
    }

    @Test func originateResponseIsAnEventEvenWithItsActionID() {
        var machine = self.readyMachine()
        _ = machine.sendRequested(.ping, id: "u1")
        _ = machine.messageReceived(["Response": "Success", "ActionID": "u1", "Message": "Originate successfully queued"])
        let event: AMIMessage = ["Event": "OriginateResponse", "ActionID": "u1", "Response": "Success", "Reason": "4"]
        #expect(machine.messageReceived(event) == .deliverEvent(AMIEvent(event)!))
    }

    @Test func anUnansweredPingClosesTheConnection() {
        var machine = self.readyMachine()
        guard case .write(let ping) = machine.keepaliveTick() else {
            Issue.record("expected a Ping")
            return
        }
        #expect(ping["Action"] == "Ping")
        #expect(machine.messageReceived(["Response": "Success", "ActionID": ping["ActionID"]!, "Ping": "Pong"]) == .none)
        guard case .write = machine.keepaliveTick() else {
            Issue.record("expected a second Ping")
            return
        }
        #expect(machine.keepaliveTick() == .close(.keepaliveTimeout))
    }

    @Test func aDroppedConnectionFailsEveryWaitingAction() {
        var machine = self.readyMachine()
        _ = machine.sendRequested(.ping, id: "b")
        _ = machine.sendRequested(.ping, id: "a")
        #expect(machine.connectionClosed() == .failRequests(ids: ["a", "b"], .connectionLost))
        #expect(machine.sendRequested(.ping, id: "c") == .failRequest(id: "c", .notConnected))
    }

    @Test func aTimedOutActionIgnoresItsLateReply() {
        var machine = self.readyMachine()
        _ = machine.sendRequested(.ping, id: "t")
        #expect(machine.requestTimedOut(id: "t") == .failRequest(id: "t", .responseTimeout))
        #expect(machine.messageReceived(["Response": "Success", "ActionID": "t"]) == .none)
    }

    @Test func logoffWaitsForGoodbye() {
        var machine = self.readyMachine()
        #expect(machine.closeRequested() == .write(["Action": "Logoff", "ActionID": "cex-logoff"]))
        #expect(machine.sendRequested(.ping, id: "late") == .failRequest(id: "late", .closing))
        #expect(machine.messageReceived(["Response": "Goodbye", "ActionID": "cex-logoff", "Message": "Thanks for all the fish."]) == .close(nil))
    }
}
