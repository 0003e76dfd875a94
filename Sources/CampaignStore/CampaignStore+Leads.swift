import CampaignCore
import Foundation
import GRDB
import GRDBSQLite

extension CampaignStore {
    /// The campaign's row id, creating the row on first use. The file and template are updated
    /// to what the campaign file says now.
    public func campaignID(_ campaign: Campaign, now: Date = Date()) throws -> Int64 {
        try self.writer.write { db in
            if let id = try Int64.fetchOne(db, sql: "SELECT id FROM campaign WHERE name = ?", arguments: [campaign.name]) {
                try db.execute(sql: "UPDATE campaign SET file = ?, template = ? WHERE id = ?", arguments: [campaign.file, campaign.template, id])
                return id
            }
            try db.execute(
                sql: "INSERT INTO campaign (name, file, template, created_at) VALUES (?, ?, ?, ?)",
                arguments: [campaign.name, campaign.file, campaign.template, now])
            return db.lastInsertedRowID
        }
    }

    /// The id of a campaign by name, if the store has it.
    public func campaignID(named name: String) throws -> Int64? {
        try self.writer.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM campaign WHERE name = ?", arguments: [name]) }
    }

    /// Every number the campaign already has.
    public func phones(campaignID: Int64) throws -> Set<String> {
        try self.writer.read { db in
            var phones = Set<String>()
            let cursor = try String.fetchCursor(db, sql: "SELECT phone FROM lead WHERE campaign_id = ?", arguments: [campaignID])
            while let phone = try cursor.next() { phones.insert(phone) }
            return phones
        }
    }

    public struct ImportCounts: Sendable, Hashable {
        public var imported = 0
        public var unchanged = 0
        public var rejected = 0
        public init() {}
    }

    /// Imports one file's leads in one transaction: `next` hands over batches until it returns
    /// nil. If `next` or an insert throws, nothing of the file is kept.
    ///
    /// When the file is large next to what the store holds, the lead indexes are dropped for
    /// the insert and rebuilt before the commit (sorting once beats a million index inserts);
    /// the rebuilt unique index checks again that no number is there twice.
    public func importLeads(
        campaignID: Int64, file: String, header: [String], bytes: [UInt8], expectedRows: Int, now: Date = Date(),
        next: () throws -> [ImportedLead]?, counts: () -> ImportCounts
    ) throws -> ImportCounts {
        try self.writer.write { db in
            let headerJSON = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
            try db.execute(
                sql: "INSERT INTO lead_import (campaign_id, file, header, imported, unchanged, rejected, imported_at) VALUES (?, ?, ?, 0, 0, 0, ?)",
                arguments: [campaignID, file, headerJSON, now])
            let importID = db.lastInsertedRowID
            let stored = try Int.fetchOne(db, sql: "SELECT count(*) FROM lead") ?? 0
            let rebuildIndexes = stored < expectedRows / 2
            if rebuildIndexes {
                try db.execute(sql: "DROP INDEX lead_phone; DROP INDEX lead_due;")
            }
            let statement = try db.makeStatement(
                sql: "INSERT INTO lead (campaign_id, import_id, line, phone, time_zones, record) VALUES (?, ?, ?, ?, ?, ?)")
            let handle = statement.sqliteStatement
            // A big page cache for the insert: the number index takes keys in no order.
            try db.execute(sql: "PRAGMA cache_size = -131072")
            defer { try? db.execute(sql: "PRAGMA cache_size = -2000") }
            var inserted = 0
            try bytes.withUnsafeBufferPointer { file in
                let base = UnsafeRawPointer(file.baseAddress!).assumingMemoryBound(to: CChar.self)
                while let batch = try next() {
                    for lead in batch {
                        sqlite3_bind_int64(handle, 1, campaignID)
                        sqlite3_bind_int64(handle, 2, importID)
                        sqlite3_bind_int64(handle, 3, Int64(lead.line))
                        Self.bind(handle, 4, lead.phone.e164)
                        Self.bind(handle, 5, lead.timeZones)
                        sqlite3_bind_text(handle, 6, base + lead.record.lowerBound, Int32(lead.record.count), Self.transient)
                        let code = sqlite3_step(handle)
                        sqlite3_reset(handle)
                        guard code == SQLITE_DONE else {
                            throw StoreError("line \(lead.line): the lead could not be stored (\(String(cString: sqlite3_errstr(code))))")
                        }
                        inserted += 1
                    }
                }
            }
            if rebuildIndexes {
                do {
                    try db.execute(sql: Schema.leadIndexes)
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    throw StoreError("the file has a number the campaign already holds")
                }
            }
            var final = counts()
            final.imported = inserted
            try db.execute(
                sql: "UPDATE lead_import SET imported = ?, unchanged = ?, rejected = ? WHERE id = ?",
                arguments: [final.imported, final.unchanged, final.rejected, importID])
            return final
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ statement: OpaquePointer?, _ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                if let base = chars.baseAddress {
                    _ = sqlite3_bind_text(statement, index, base, Int32(chars.count), Self.transient)
                } else {
                    _ = sqlite3_bind_text(statement, index, "", 0, Self.transient)
                }
            }
        }
    }

    // MARK: Do not call

    /// Every number on the do-not-call list.
    public func doNotCallNumbers() throws -> Set<String> {
        try self.writer.read { db in
            var phones = Set<String>()
            let cursor = try String.fetchCursor(db, sql: "SELECT phone FROM dnc")
            while let phone = try cursor.next() { phones.insert(phone) }
            return phones
        }
    }

    public func isDoNotCall(_ phone: PhoneNumber) throws -> Bool {
        try self.writer.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM dnc WHERE phone = ?", arguments: [phone.e164]) ?? false }
    }

    /// Adds numbers to the list; returns how many were new. `source` says where they came from
    /// (a file, `opt-out` with the attempt, `manual`).
    @discardableResult
    public func addDoNotCall(_ phones: [PhoneNumber], source: String, now: Date = Date()) throws -> Int {
        try self.writer.write { db in try Self.insertDoNotCall(phones, source: source, now: now, in: db) }
    }

    /// The one INSERT into the list, for `addDoNotCall` and for opt-outs settled with their attempt.
    static func insertDoNotCall(_ phones: [PhoneNumber], source: String, now: Date, in db: Database) throws -> Int {
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO dnc (phone, source, added_at) VALUES (?, ?, ?)")
        var added = 0
        for phone in phones {
            try statement.execute(arguments: [phone.e164, source, now])
            added += db.changesCount
        }
        return added
    }

    public func doNotCallCount() throws -> Int {
        try self.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dnc") ?? 0 }
    }
}
