import CampaignCore
import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One runner per campaign. A lock on a file beside the store (`<store>.campaign-<id>.lock`)
/// that the kernel drops when its holder exits, however it exits: a `kill -9` never leaves a
/// campaign locked, and cron and a person can never dial one campaign at the same time.
/// Each held lock is also a row in `run`, for `cex campaign status` and the run history.
///
/// On Linux the lock is an open-file-description lock (`F_OFD_SETLK`), so two holders in one
/// process exclude each other too, and `status` can look without taking it.
public final class RunLock: Sendable {
    public let path: String
    public let runID: Int64
    private let descriptor: Int32
    private let store: CampaignStore

    /// Who holds a campaign's lock.
    public struct Holder: Sendable, Hashable, CustomStringConvertible {
        public var pid: Int32
        public var host: String
        public var command: String
        public var startedAt: Date
        public var description: String {
            "\(self.command) (pid \(self.pid) on \(self.host), since \(ISO8601DateFormatter().string(from: self.startedAt)))"
        }
    }

    /// Another process is running the campaign.
    public struct Busy: Error, Hashable, CustomStringConvertible {
        public var campaign: String
        public var holder: Holder?
        public var description: String {
            "campaign \(self.campaign) is being run by \(self.holder?.description ?? "another process")"
        }
    }

    init(path: String, descriptor: Int32, runID: Int64, store: CampaignStore) {
        self.path = path
        self.descriptor = descriptor
        self.runID = runID
        self.store = store
    }

    /// Ends the run: records how it ended and lets the next runner in.
    public func release(ending: String) {
        try? self.store.endRun(self.runID, ending: ending)
        close(self.descriptor)
    }

    static func lockPath(store: String, campaignID: Int64) -> String { "\(store).campaign-\(campaignID).lock" }

    /// Takes the lock without waiting; false when another holder has it.
    static func tryLock(_ descriptor: Int32) -> Bool {
        #if os(Linux)
        var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
        return fcntl(descriptor, ofdSetLock, &lock) == 0
        #else
        return flock(descriptor, LOCK_EX | LOCK_NB) == 0
        #endif
    }

    /// True when some holder has the lock; does not take it.
    static func isLocked(path: String) -> Bool {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        #if os(Linux)
        var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: 0, l_len: 0, l_pid: 0)
        guard fcntl(descriptor, ofdGetLock, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
        #else
        guard flock(descriptor, LOCK_SH | LOCK_NB) == 0 else { return true }
        flock(descriptor, LOCK_UN)
        return false
        #endif
    }

    #if os(Linux)
    // <fcntl.h> under _GNU_SOURCE; Swift's Glibc module does not export them.
    private static let ofdGetLock: Int32 = 36
    private static let ofdSetLock: Int32 = 37
    #endif
}

extension CampaignStore {
    /// Takes the campaign's run lock, or throws `RunLock.Busy` naming who has it.
    public func lockRun(campaignID: Int64, campaign: String, command: String, now: Date = Date()) throws -> RunLock {
        let path = RunLock.lockPath(store: self.path, campaignID: campaignID)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError("cannot open the run lock \(path): \(String(cString: strerror(errno)))") }
        guard RunLock.tryLock(descriptor) else {
            close(descriptor)
            throw RunLock.Busy(campaign: campaign, holder: try self.openRun(campaignID: campaignID))
        }
        do {
            let runID = try self.writer.write { db in
                // Runs whose holder died without ending them: the lock is free, so they are over.
                try db.execute(
                    sql: "UPDATE run SET ended_at = ?, ending = 'ended without a word (killed or crashed)' WHERE campaign_id = ? AND ended_at IS NULL",
                    arguments: [now, campaignID])
                try db.execute(
                    sql: "INSERT INTO run (campaign_id, pid, host, command, started_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [campaignID, getpid(), ProcessInfo.processInfo.hostName, command, now])
                return db.lastInsertedRowID
            }
            return RunLock(path: path, descriptor: descriptor, runID: runID, store: self)
        } catch {
            close(descriptor)
            throw error
        }
    }

    /// Who runs the campaign now; nil when no process holds its lock.
    public func currentRun(campaignID: Int64) throws -> RunLock.Holder? {
        guard RunLock.isLocked(path: RunLock.lockPath(store: self.path, campaignID: campaignID)) else { return nil }
        return try self.openRun(campaignID: campaignID)
    }

    /// The last run, finished or not: when it started, how it ended.
    public func lastRun(campaignID: Int64) throws -> (holder: RunLock.Holder, endedAt: Date?, ending: String?)? {
        try self.writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM run WHERE campaign_id = ? ORDER BY id DESC LIMIT 1", arguments: [campaignID])
            else { return nil }
            return (Self.holder(row), row["ended_at"], row["ending"])
        }
    }

    func openRun(campaignID: Int64) throws -> RunLock.Holder? {
        try self.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM run WHERE campaign_id = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1", arguments: [campaignID])
                .map(Self.holder)
        }
    }

    func endRun(_ runID: Int64, ending: String, now: Date = Date()) throws {
        try self.writer.write { db in
            try db.execute(sql: "UPDATE run SET ended_at = ?, ending = ? WHERE id = ?", arguments: [now, ending, runID])
        }
    }

    private static func holder(_ row: Row) -> RunLock.Holder {
        RunLock.Holder(pid: row["pid"], host: row["host"], command: row["command"], startedAt: row["started_at"])
    }
}
