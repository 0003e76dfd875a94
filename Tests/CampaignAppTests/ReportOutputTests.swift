import Foundation
import Testing

@testable import CampaignApp

/// `--out`: a folder gets `<campaign>.<format>` inside it and keeps what it held; a file is
/// replaced whole; a device is written in place; a failed write is an error and leaves nothing.
@Suite struct ReportOutputTests {
    let folder: URL

    init() throws {
        self.folder = FileManager.default.temporaryDirectory.appendingPathComponent("cex-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.folder, withIntermediateDirectories: true)
    }

    func write(_ out: String?, _ text: String = "rows\n") throws -> String? {
        try ReportOutput.write(to: out, campaign: "spring/sale", format: "csv") { handle in try handle.write(contentsOf: Data(text.utf8)) }.path
    }

    @Test func aFolderGetsTheReportInsideItAndKeepsWhatItHeld() throws {
        let other = self.folder.appendingPathComponent("other.txt")
        try Data("keep".utf8).write(to: other)
        for out in [self.folder.path, self.folder.path + "/"] {
            let path = try #require(try self.write(out))
            #expect(path.hasSuffix("/spring_sale.csv"))
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "rows\n")
        }
        #expect(try String(contentsOf: other, encoding: .utf8) == "keep")
        #expect(try FileManager.default.contentsOfDirectory(atPath: self.folder.path).sorted() == ["other.txt", "spring_sale.csv"])
    }

    @Test func aFileIsReplacedWholeAndReadableByItsOwnerOnly() throws {
        let target = self.folder.appendingPathComponent("r.csv").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        _ = try self.write(target, "new\n")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new\n")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
    }

    @Test func aFullDeviceIsAnErrorAndIsLeftAsItWas() throws {
        #expect(throws: ReportOutput.Failure.self) { try self.write("/dev/full") }
        var info = stat()
        #expect(stat("/dev/full", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)
    }

    @Test func aFolderThatIsNotThereIsAnErrorAndNothingIsMade() throws {
        let missing = self.folder.appendingPathComponent("v2/").path + "/"
        #expect(throws: ReportOutput.Failure.self) { try self.write(missing) }
        #expect(!FileManager.default.fileExists(atPath: self.folder.appendingPathComponent("v2").path))
    }

    @Test func aFailedWriteLeavesNoPartialFile() throws {
        struct Broken: Error {}
        let target = self.folder.appendingPathComponent("r.csv").path
        #expect(throws: Broken.self) {
            try ReportOutput.write(to: target, campaign: "c", format: "csv") { _ in throw Broken() }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: self.folder.path).isEmpty)
    }
}
