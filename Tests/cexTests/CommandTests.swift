import ArgumentParser
import CampaignApp
import CampaignCore
import Testing

@testable import cex

@Suite struct CommandTests {
    @Test func parsesTheDemo() throws {
        let command = try Cex.parseAsRoot(["demo", "--out", "/tmp/x"])
        let demo = try #require(command as? Cex.Demo)
        #expect(demo.out == "/tmp/x")
        #expect(demo.campaign == "campaigns/demo.yaml")
    }

    @Test func parsesTheCampaignCommands() throws {
        let start = try #require(try Cex.parseAsRoot(["campaign", "start", "campaigns/demo.yaml", "--store", "/tmp/s.sqlite"]) as? Cex.CampaignCommand.Start)
        #expect(start.file == "campaigns/demo.yaml" && start.store.path == "/tmp/s.sqlite")
        let run = try #require(try Cex.parseAsRoot(["campaign", "run", "a.yaml", "b.yaml"]) as? Cex.CampaignCommand.Run)
        #expect(run.files == ["a.yaml", "b.yaml"])
        let export = try #require(try Cex.parseAsRoot(["report", "export", "--campaign", "demo", "--format", "json"]) as? Cex.Report.Export)
        #expect(export.format == "json")
        #expect(throws: (any Error).self) { try Cex.parseAsRoot(["report", "export", "--campaign", "demo", "--format", "xlsx"]) }
        #expect(throws: (any Error).self) { try Cex.parseAsRoot(["campaign", "start"]) }
    }

    @Test func parsesTheSimulator() throws {
        let command = try Cex.parseAsRoot(["pbx", "simulate", "--ami", "0.0.0.0:15038", "--number", "+1555=busy", "--amd"])
        let simulate = try #require(command as? Cex.PBX.Simulate)
        #expect(simulate.ami == HostPort(argument: "0.0.0.0:15038"))
        #expect(simulate.numbers == ["+1555=busy"])
        #expect(simulate.amd)
        #expect(throws: (any Error).self) { try Cex.parseAsRoot(["pbx", "simulate", "--number", "busy"]) }
        #expect(throws: (any Error).self) { try Cex.parseAsRoot(["pbx", "simulate", "--ami", "nohost"]) }
    }

    @Test func parsesEngineServeAndGuardsTheRehearsalMode() throws {
        let command = try Cex.parseAsRoot(["engine", "serve", "--listen", "0.0.0.0:9100", "--calls", "/tmp/calls"])
        let serve = try #require(command as? Cex.Engine.Serve)
        #expect(serve.listen == HostPort(argument: "0.0.0.0:9100"))
        #expect(serve.calls == "/tmp/calls" && !serve.acceptAnyCall)
        let rehearsal = try #require(
            try Cex.parseAsRoot(["engine", "serve", "--accept-any-call", "--template", "t", "--lead", "first_name=Ana", "--lead", "note=a=b"]) as? Cex.Engine.Serve
        )
        #expect(rehearsal.leadFields == ["first_name=Ana", "note=a=b"])
        // Neither source of calls, both, rehearsal options without the rehearsal, a bad lead field.
        for arguments in [
            ["engine", "serve"], ["engine", "serve", "--calls", "c", "--accept-any-call"], ["engine", "serve", "--calls", "c", "--lead", "a=b"],
            ["engine", "serve", "--accept-any-call", "--lead", "novalue"], ["engine", "serve", "--accept-any-call", "--time-zone", "Mars/Olympus"],
        ] {
            #expect(throws: (any Error).self, "\(arguments)") { try Cex.parseAsRoot(arguments) }
        }
    }

    @Test func hostPortNeedsBothParts() {
        #expect(HostPort(argument: "127.0.0.1:9092")?.port == 9092)
        #expect(HostPort(argument: ":9092") == nil)
        #expect(HostPort(argument: "127.0.0.1:99999") == nil)
    }

    @Test func helpListsTheCommands() {
        let help = Cex.helpMessage()
        for command in ["demo", "engine", "pbx", "version"] { #expect(help.contains(command)) }
    }

    @Test func theProgressLineHasTheTotalThePercentageTheLiveCallsTheElapsedTimeAndAnETA() {
        var progress = CampaignRunner.Progress()
        progress.leadsDue = 40
        progress.settled = 10
        progress.live = 3
        progress.ringing = 1
        progress.talking = 2
        progress.dialled = 13
        progress.outcomes = [.interested: 4, .busy: 6]
        #expect(
            Terminal.line(progress, elapsed: .seconds(130))
                == "done 10/40 (25%)  live 3 (ringing 1, talking 2)  dialled 13  elapsed 2m10s  ETA 6m30s  [busy 6, interested 4]")
        progress.settled = 40
        (progress.live, progress.ringing, progress.talking) = (0, 0, 0)
        #expect(Terminal.line(progress, elapsed: .seconds(4000)).hasPrefix("done 40/40 (100%)  live 0 (ringing 0, talking 0)  dialled 13  elapsed 1h06m  ["))
        // Retries in the run never push it past 100%.
        progress.settled = 45
        #expect(Terminal.line(progress, elapsed: .seconds(5)).hasPrefix("done 45/45 (100%)"))
    }
}
