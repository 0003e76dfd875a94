import Foundation

/// Where a report goes, and writing it there without ever losing a file:
///
/// - no path: standard output, every write checked;
/// - an existing directory (or a path ending in `/`): `DIR/<campaign>.<format>` inside it;
/// - a regular file, or a path not there yet: written beside it (`.<name>.XXXXXX`, 0600),
///   flushed to disk, then renamed over it, so a reader sees the old report or the whole new one;
/// - a device, pipe or socket (`/dev/stdout`, a FIFO): written in place, every write checked.
///
/// Nothing else is ever created, moved or removed. A failed write (a full disk, a closed pipe,
/// a folder it may not write) is an error naming the path and the reason, and leaves no partial
/// file behind.
public enum ReportOutput {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The file a report named `campaign` in `format` goes to for `out`; nil for standard output.
    public static func destination(_ out: String?, campaign: String, format: String) throws -> String? {
        guard let out else { return nil }
        guard !out.isEmpty else { throw Failure(description: "--out is empty: name a file or a folder") }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory)
        let name = campaign.map { $0 == "/" || $0 == "\0" ? "_" : $0 }
        if exists && isDirectory.boolValue { return (out.hasSuffix("/") ? out : out + "/") + String(name) + "." + format }
        if out.hasSuffix("/") { throw Failure(description: "cannot write the report into \(out): no such folder") }
        return out
    }

    /// Runs `write` against the destination's handle and puts the result in place; returns what
    /// `write` returned and the path written (nil: standard output).
    /// `what` names the file in errors ("the report", "the rejects file").
    public static func write<T>(
        to out: String?, campaign: String, format: String, what: String = "the report", _ write: (FileHandle) throws -> T
    ) throws -> (result: T, path: String?) {
        guard let path = try self.destination(out, campaign: campaign, format: format) else {
            let result = try self.checked(nil, what) { try write(.standardOutput) }
            return (result, nil)
        }
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            // A device, a pipe, a socket: in place.
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw self.failure(path, errno, what) }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            let result = try self.checked(path, what) { try write(handle) }
            try self.checked(path, what) { try handle.close() }
            return (result, path)
        }
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var template = Array((folder + "/." + url.lastPathComponent + ".XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw self.failure(path, errno, what) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        fchmod(fd, 0o600)
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        do {
            let result = try self.checked(path, what) { try write(handle) }
            guard fsync(fd) == 0 else { throw self.failure(path, errno, what) }
            guard close(fd) == 0 else {
                unlink(temporary)
                throw self.failure(path, errno, what)
            }
            guard rename(temporary, path) == 0 else {
                let code = errno
                unlink(temporary)
                throw self.failure(path, code, what)
            }
            return (result, path)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    /// Runs `body`, naming the destination in any error it throws.
    private static func checked<T>(_ path: String?, _ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as Failure {
            throw error
        } catch let error as CocoaError {
            let code = (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code
            throw Failure(description: "cannot write \(what) to \(path ?? "standard output"): \(code.map { String(cString: strerror(Int32($0))) } ?? "the write failed")")
        } catch let error as NSError where error.domain == NSPOSIXErrorDomain {
            throw self.failure(path, Int32(error.code), what)
        }
    }

    private static func failure(_ path: String?, _ code: Int32, _ what: String) -> Failure {
        Failure(description: "cannot write \(what) to \(path ?? "standard output"): \(String(cString: strerror(code)))")
    }
}
