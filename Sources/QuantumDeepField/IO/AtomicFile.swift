#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes `data` to `path` atomically: a temporary file in the same folder is written,
/// flushed to disk and renamed over the target, so a reader (or a crash) sees either
/// the old file or the new one, never a partial one. On failure the old file is kept
/// and the temporary file removed.
public func writeAtomically(_ data: Data, to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    let tmp = (dir.isEmpty ? "" : dir + "/") + ".\(name).tmp.\(getpid())"
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

public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
}
