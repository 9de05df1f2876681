#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes `data` to `path` atomically: a temporary file in the same folder is written,
/// flushed to disk and renamed over the target, so a reader (or a crash) sees either
/// the old file or the new one, never a partial one. On failure the old file is kept
/// and the temporary file removed. Throws `QDFError` (file: `path`) on any I/O failure.
public func writeAtomically(_ data: Data, to path: String) throws {
    let tmp = temporaryPath(for: path)
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { throw QDFError("cannot write: \(String(cString: strerror(errno)))", file: path) }
    var ok = false
    defer { if !ok { _ = close(fd); unlink(tmp) } }
    try data.withUnsafeBytes { raw in
        var off = 0
        while off < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw QDFError("cannot write: \(String(cString: strerror(errno)))", file: path)
            }
            off += n
        }
    }
    if fsync(fd) != 0 { throw QDFError("cannot write (fsync): \(String(cString: strerror(errno)))", file: path) }
    ok = true
    if close(fd) != 0 { unlink(tmp); throw QDFError("cannot write (close): \(String(cString: strerror(errno)))", file: path) }
    if rename(tmp, path) != 0 {
        let e = String(cString: strerror(errno)); unlink(tmp)
        throw QDFError("cannot write (rename): \(e)", file: path)
    }
}

/// The temporary file beside `path` that atomic writes rename over it: ".NAME.tmp.PID".
func temporaryPath(for path: String) -> String {
    let dir = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    return (dir.isEmpty ? "" : dir + "/") + ".\(name).tmp.\(getpid())"
}

/// Writes `text` as UTF-8 to `path` atomically, as `writeAtomically(_:to:)` for `Data`.
/// Throws `QDFError` (file: `path`).
public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
}

/// A text file written line by line into a temporary file beside the target and renamed
/// over it by `commit()`; `abandon()` (or deinit without commit) removes the temporary
/// file, so a failed job never leaves a partial file or clobbers an existing one.
/// Memory stays constant however much is written. Not thread-safe: one thread at a time.
public final class AtomicTextWriter {
    /// The target file (replaced only by `commit()`).
    public let path: String
    private let tmp: String
    private var file: UnsafeMutablePointer<FILE>?

    /// Opens the temporary file ".NAME.tmp.PID" beside `path`. Throws `QDFError` (file:
    /// `path`) if it cannot be created.
    public init(path: String) throws {
        self.path = path
        tmp = temporaryPath(for: path)
        guard let f = fopen(tmp, "w") else {
            throw QDFError("cannot write: \(String(cString: strerror(errno)))", file: path)
        }
        file = f
        setvbuf(f, nil, _IOFBF, 1 << 16)
    }

    /// Appends `line` and a newline ("\n"). Does nothing after `commit()` or `abandon()`.
    /// Throws `QDFError` (file: `path`) on a write error.
    public func write(_ line: String) throws {
        guard let f = file else { return }
        var ok = true
        line.utf8CString.withUnsafeBufferPointer { p in
            if fputs(p.baseAddress!, f) < 0 || fputc(10, f) < 0 { ok = false }
        }
        if !ok { throw QDFError("cannot write: \(String(cString: strerror(errno)))", file: path) }
    }

    /// Flushes and fsyncs the temporary file and renames it over `path`; later calls do
    /// nothing. Throws `QDFError` (file: `path`) on failure, after removing the temporary file.
    public func commit() throws {
        guard let f = file else { return }
        file = nil
        if fflush(f) != 0 || fsync(fileno(f)) != 0 {
            let e = String(cString: strerror(errno)); fclose(f); unlink(tmp)
            throw QDFError("cannot write: \(e)", file: path)
        }
        fclose(f)
        if rename(tmp, path) != 0 {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw QDFError("cannot write (rename): \(e)", file: path)
        }
    }

    /// Closes and removes the temporary file, leaving `path` untouched; no-op after `commit()`.
    public func abandon() {
        if let f = file { fclose(f); file = nil; unlink(tmp) }
    }

    deinit { abandon() }
}
