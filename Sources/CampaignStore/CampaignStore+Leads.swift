import CampaignCore
import Foundation
import GRDB
import GRDBSQLite

extension CampaignStore {
    /// The campaign's row id, creating the row on first use. The file, template and analysis
    /// fields are updated to what the campaign file says now.
    public func campaignID(_ campaign: Campaign, now: Date = Date()) throws -> Int64 {
        let fields = String(decoding: try JSONEncoder().encode(campaign.analysisFields), as: UTF8.self)
        return try self.writer.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT id, file FROM campaign WHERE name = ?", arguments: [campaign.name]) {
                let id: Int64 = row["id"]
                try Self.checkName(campaign, stored: row["file"])
                try db.execute(
                    sql: "UPDATE campaign SET file = ?, template = ?, analysis_fields = ? WHERE id = ?",
                    arguments: [campaign.file, campaign.template, fields, id])
                return id
            }
            try db.execute(
                sql: "INSERT INTO campaign (name, file, template, analysis_fields, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [campaign.name, campaign.file, campaign.template, fields, now])
            return db.lastInsertedRowID
        }
    }

    /// The id of the campaign the file names, without storing anything (nil when the store has
    /// none by that name); fails as `campaignID(_:)` does when another file holds the name.
    public func existingCampaignID(_ campaign: Campaign) throws -> Int64? {
        try self.writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, file FROM campaign WHERE name = ?", arguments: [campaign.name]) else { return nil }
            try Self.checkName(campaign, stored: row["file"])
            return row["id"]
        }
    }

    static func checkName(_ campaign: Campaign, stored: String) throws {
        guard let other = Self.otherFile(claiming: campaign.name, stored: stored, current: campaign.file) else { return }
        throw StoreError(
            "campaign name \(campaign.name) is already used by \(other) in this store; give \(campaign.file) a `name:` of its own "
                + "(two files with one name would merge their leads)")
    }

    /// The file stored for a campaign name when it is another file that still declares that
    /// name; nil when it is the same file, or one that was moved away or renamed (the new file
    /// takes the campaign over).
    static func otherFile(claiming name: String, stored: String, current: String) -> String? {
        func real(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
        guard real(stored) != real(current), CampaignFile.declaredName(path: stored) == name else { return nil }
        return stored
    }

    /// The campaign's own analysis fields, as its file last gave them.
    public func analysisFields(campaignID: Int64) throws -> [AnalysisField] {
        try self.writer.read { db in
            try String.fetchOne(db, sql: "SELECT analysis_fields FROM campaign WHERE id = ?", arguments: [campaignID]).map(Self.analysisFields) ?? []
        }
    }

    static func analysisFields(_ json: String) -> [AnalysisField] {
        (try? JSONDecoder().decode([AnalysisField].self, from: Data(json.utf8))) ?? []
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
    /// When the file is large next to what the store holds, the number index is dropped for the
    /// insert and rebuilt before the commit (sorting once beats a million inserts in no order);
    /// the rebuilt unique index checks again that no number is there twice. The due index takes
    /// new leads at its end (same campaign, pending, no attempts, growing ids), so it stays.
    public func importLeads(
        campaignID: Int64, file: String, header: [String], bytes: [UInt8], expectedRows: Int, now: Date = Date(),
        next: () throws -> [ImportedLead]?, counts: () -> ImportCounts
    ) throws -> ImportCounts {
        // Foreign keys off for the insert: every lead row refers to the campaign and to the import
        // row this transaction wrote, and checking both twice per row took a fifth of an import.
        // (SQLite changes the setting only outside a transaction.)
        try self.writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
            var result = ImportCounts()
            try db.inTransaction {
                result = try self.insertLeads(
                    db, campaignID: campaignID, file: file, header: header, bytes: bytes, expectedRows: expectedRows, now: now, next: next,
                    counts: counts)
                return .commit
            }
            return result
        }
    }

    private func insertLeads(
        _ db: Database, campaignID: Int64, file: String, header: [String], bytes: [UInt8], expectedRows: Int, now: Date,
        next: () throws -> [ImportedLead]?, counts: () -> ImportCounts
    ) throws -> ImportCounts {
        let headerJSON = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        try db.execute(
            sql: "INSERT INTO lead_import (campaign_id, file, header, imported, unchanged, rejected, imported_at) VALUES (?, ?, ?, 0, 0, 0, ?)",
            arguments: [campaignID, file, headerJSON, now])
        let importID = db.lastInsertedRowID
        let stored = try Int.fetchOne(db, sql: "SELECT count(*) FROM lead") ?? 0
        let rebuildPhoneIndex = stored < expectedRows / 2
        if rebuildPhoneIndex {
            try db.execute(sql: "DROP INDEX lead_phone")
        }
        // Rows go in `rowsPerInsert` at a time: one statement per row cost more than the rows.
        let many = try db.makeStatement(sql: Self.insertLeadsSQL(rows: Self.rowsPerInsert))
        let one = try db.makeStatement(sql: Self.insertLeadsSQL(rows: 1))
        for statement in [many, one] {
            sqlite3_bind_int64(statement.sqliteStatement, 1, campaignID)
            sqlite3_bind_int64(statement.sqliteStatement, 2, importID)
        }
        // A big page cache for the insert: the number index takes keys in no order.
        try db.execute(sql: "PRAGMA cache_size = -131072")
        defer { try? db.execute(sql: "PRAGMA cache_size = -2000") }
        var inserted = 0
        try bytes.withUnsafeBufferPointer { file in
            let base = UnsafeRawPointer(file.baseAddress!).assumingMemoryBound(to: CChar.self)
            // Records are bound where they lie in `bytes`, without a copy, and unbound before it goes.
            defer { for statement in [many, one] { sqlite3_clear_bindings(statement.sqliteStatement) } }
            func insert(_ leads: ArraySlice<ImportedLead>, with statement: Statement) throws {
                let handle = statement.sqliteStatement
                var parameter: Int32 = 3
                for lead in leads {
                    sqlite3_bind_int64(handle, parameter, Int64(lead.line))
                    Self.bind(handle, parameter + 1, lead.phone.e164)
                    Self.bind(handle, parameter + 2, lead.timeZones)
                    sqlite3_bind_text(handle, parameter + 3, base + lead.record.lowerBound, Int32(lead.record.count), nil)
                    parameter += 4
                }
                let code = sqlite3_step(handle)
                sqlite3_reset(handle)
                guard code == SQLITE_DONE else {
                    let lines = leads.count == 1 ? "line \(leads.first!.line)" : "lines \(leads.first!.line)–\(leads.last!.line)"
                    throw StoreError("\(lines): the leads could not be stored (\(String(cString: sqlite3_errstr(code))))", code: code)
                }
                inserted += leads.count
            }
            while let batch = try next() {
                var start = batch.startIndex
                while batch.endIndex - start >= Self.rowsPerInsert {
                    try insert(batch[start..<(start + Self.rowsPerInsert)], with: many)
                    start += Self.rowsPerInsert
                }
                for index in start..<batch.endIndex { try insert(batch[index...index], with: one) }
            }
        }
        if rebuildPhoneIndex {
            do {
                try db.execute(sql: Schema.leadPhoneIndex)
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

    static let rowsPerInsert = 64

    /// `INSERT INTO lead … VALUES (?1, ?2, ?, ?, ?, ?), (?1, ?2, ?, ?, ?, ?), …`: the campaign and
    /// the import are bound once, then line, phone, zones and record for each row.
    static func insertLeadsSQL(rows: Int) -> String {
        var parameter = 2
        let values = (0..<rows).map { _ in
            defer { parameter += 4 }
            return "(?1, ?2, ?\(parameter + 1), ?\(parameter + 2), ?\(parameter + 3), ?\(parameter + 4))"
        }
        return "INSERT INTO lead (campaign_id, import_id, line, phone, time_zones, record) VALUES " + values.joined(separator: ", ")
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
