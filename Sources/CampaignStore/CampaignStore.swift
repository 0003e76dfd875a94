import CampaignCore
import Foundation
import GRDB
import GRDBSQLite

/// The only door to SQL. One SQLite file in WAL mode (GRDB `DatabasePool` on the system
/// libsqlite3) holds campaigns, leads, attempts, call records, the do-not-call list and run history, for
/// every process that works on them: `cex campaign start`, cron runs, a shared engine, reports.
///
/// Invariants live in the schema: one lead per number per campaign, at most one unsettled
/// attempt per lead (a partial unique index), settled attempts that no one can change
/// (a trigger), and nothing ever deleted.
public final class CampaignStore: Sendable {
    let writer: any DatabaseWriter
    public let path: String

    /// A store in memory, for commands that must store nothing (`campaign check` before any run).
    public init(inMemoryAt path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        self.writer = try DatabaseQueue(configuration: configuration)
        self.path = path
        try Self.migrator.migrate(self.writer)
    }

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Reads of a large campaign (reports, imports' duplicate checks) map pages instead of copying them.
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.writer = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        try Self.migrator.migrate(self.writer)
    }

    /// The schema, as named migrations that are only ever appended to.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: campaigns, leads, attempts, call records, do-not-call") { db in
            try db.execute(sql: Schema.v1)
        }
        migrator.registerMigration("v2: runs") { db in
            try db.execute(sql: Schema.v2)
        }
        migrator.registerMigration("v3: a campaign's own analysis fields") { db in
            try db.execute(sql: Schema.v3)
        }
        migrator.registerMigration("v4: an attempt is admitted to the engine once") { db in
            try db.execute(sql: Schema.v4)
        }
        return migrator
    }

    /// The migrations applied so far, in order.
    public func appliedMigrations() throws -> [String] {
        try self.writer.read { db in try Self.migrator.appliedMigrations(db) }
    }
}

/// A store problem the user can act on. Descriptions carry no phone numbers or lead data.
public struct StoreError: Error, Hashable, CustomStringConvertible {
    public var message: String
    /// SQLite's result code, when SQLite gave one.
    public var code: Int32?
    public init(_ message: String, code: Int32? = nil) {
        self.message = message
        self.code = code
    }
    public var description: String { self.message }

    /// Why a write failed, in words, when it is a fault that passes (a full disk, a store kept
    /// busy past the timeout, a failed disk write): the work can be tried again later. Nil for
    /// any other error.
    public static func passingFault(_ error: any Error) -> String? {
        let code: Int32
        if let error = error as? DatabaseError {
            code = error.resultCode.primaryResultCode.rawValue
        } else if let error = error as? StoreError, let raw = error.code {
            code = raw & 0xFF
        } else {
            return nil
        }
        switch code {
        case SQLITE_FULL: return "the disk holding the store is full"
        case SQLITE_BUSY, SQLITE_LOCKED: return "the store stayed busy (database is locked) past its timeout"
        case SQLITE_IOERR: return "the store's disk failed a read or write"
        default: return nil
        }
    }
}

enum Schema {
    /// One lead per number per campaign; due leads by how often they were called. A bulk import
    /// drops and rebuilds them (`CampaignStore.importLeads`).
    static let leadPhoneIndex = "CREATE UNIQUE INDEX lead_phone ON lead(campaign_id, phone)"
    static let leadIndexes = """
        \(leadPhoneIndex);
        CREATE INDEX lead_due ON lead(campaign_id, status, attempts) WHERE status != 'done';
        """

    static let v1 = """
        CREATE TABLE campaign (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            file TEXT NOT NULL,
            template TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            pause_reason TEXT,
            created_at TEXT NOT NULL
        );

        CREATE TABLE lead_import (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            file TEXT NOT NULL,
            header TEXT NOT NULL,
            imported INTEGER NOT NULL,
            unchanged INTEGER NOT NULL,
            rejected INTEGER NOT NULL,
            imported_at TEXT NOT NULL
        );

        CREATE TABLE lead (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            import_id INTEGER NOT NULL REFERENCES lead_import(id),
            line INTEGER NOT NULL,
            phone TEXT NOT NULL,
            time_zones TEXT NOT NULL,
            record TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'live', 'done')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            outcome TEXT,
            exhausted INTEGER NOT NULL DEFAULT 0,
            callback_at TEXT
        );
        \(Schema.leadIndexes)

        CREATE TABLE attempt (
            id TEXT PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            lead_id INTEGER NOT NULL REFERENCES lead(id),
            number INTEGER NOT NULL,
            phone TEXT NOT NULL,
            channel TEXT NOT NULL,
            queued_at TEXT NOT NULL,
            originated_at TEXT,
            ringing_at TEXT,
            answered_at TEXT,
            first_audio_at TEXT,
            ended_at TEXT,
            originate_error TEXT,
            originate_reason INTEGER,
            dial_status TEXT,
            hangup_cause INTEGER,
            tech_cause INTEGER,
            amd_status TEXT,
            amd_cause TEXT,
            dial_result TEXT,
            outcome TEXT,
            abandoned INTEGER NOT NULL DEFAULT 0,
            settled_at TEXT,
            note TEXT,
            UNIQUE (lead_id, number)
        );
        CREATE UNIQUE INDEX attempt_one_live_per_lead ON attempt(lead_id) WHERE outcome IS NULL;
        CREATE INDEX attempt_campaign ON attempt(campaign_id, outcome);
        CREATE TRIGGER attempt_settled_is_final BEFORE UPDATE ON attempt WHEN OLD.outcome IS NOT NULL
            BEGIN SELECT RAISE(ABORT, 'a settled attempt cannot change'); END;
        CREATE TRIGGER attempt_never_deleted BEFORE DELETE ON attempt
            BEGIN SELECT RAISE(ABORT, 'attempts are never deleted'); END;

        CREATE TABLE call_record (
            attempt_id TEXT PRIMARY KEY REFERENCES attempt(id),
            record TEXT NOT NULL,
            outcome TEXT,
            sentiment_label TEXT,
            sentiment_score REAL,
            objective TEXT,
            motive TEXT,
            objections TEXT,
            callback_at TEXT,
            summary TEXT,
            talk_seconds REAL,
            first_audio_at TEXT,
            finished INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE dnc (
            phone TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            added_at TEXT NOT NULL
        );
        """

    /// One row per run of a campaign: who held its run lock, and how the run ended.
    static let v2 = """
        CREATE TABLE run (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            ending TEXT
        );
        CREATE INDEX run_campaign ON run(campaign_id, id);
        """

    /// The fields a campaign's analysis fills in (a JSON list of `AnalysisField`), and each
    /// call's values (a JSON object, name → text).
    static let v3 = """
        ALTER TABLE campaign ADD COLUMN analysis_fields TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE call_record ADD COLUMN custom TEXT;
        """

    /// When the engine took the attempt's AudioSocket connection: a second connection with the
    /// same UUID (a replay, a stale dialplan) is refused and never writes the call's record.
    /// `resumed_at`: the abandon rate counts from the last resume. `greeting_end_at`: when the
    /// callee's greeting ended (after AMD, the end of the greeting it heard), the start of the
    /// abandonment clock that `first_audio_at` ends.
    static let v4 = """
        ALTER TABLE attempt ADD COLUMN engine_admitted_at DATETIME;
        ALTER TABLE attempt ADD COLUMN greeting_end_at DATETIME;
        ALTER TABLE campaign ADD COLUMN resumed_at DATETIME;
        """
}
