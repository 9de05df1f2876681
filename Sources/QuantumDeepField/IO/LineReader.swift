// Line-by-line reading of text files with line numbers, for streaming parsers.
// Handles LF and CRLF line endings, a UTF-8 byte-order mark and a missing final newline.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A source of raw bytes (a plain file; compressed sources can conform too). Used by one
/// thread at a time.
package protocol ByteSource: AnyObject {
    /// Reads up to `count` bytes into `buffer` (owned by the caller, at least `count` bytes
    /// writable); returns the number read, 0 at the end. Throws `QDFError` on a read error.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int
    /// Releases the source; must be safe to call more than once. `LineReader` calls it on deinit.
    func close()
}

/// The bytes of a plain file, read with read(2); closes its descriptor on `close()` or deinit.
/// One thread at a time.
package final class FileByteSource: ByteSource {
    private var fd: Int32
    /// The file being read.
    package let path: String
    /// Opens `path` for reading. Throws `QDFError` (file: `path`) if it cannot be opened.
    package init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        if fd < 0 { throw QDFError("cannot open: \(String(cString: strerror(errno)))", file: path) }
    }
    /// Reads up to `count` bytes into the caller's `buffer`, retrying on EINTR; 0 at the end
    /// of the file. Throws `QDFError` (file: `path`) on a read error.
    package func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw QDFError("read error: \(String(cString: strerror(errno)))", file: path)
        }
    }
    /// Closes the descriptor; later calls do nothing.
    package func close() { if fd >= 0 { _ = Glibc.close(fd); fd = -1 } }
    deinit { close() }
}

/// Reads a text file line by line through a growing 64 KiB buffer, counting lines; strips
/// LF/CRLF and a leading UTF-8 BOM. Owns its source and closes it on deinit. One thread at a time.
package final class LineReader {
    /// The file name used in errors (also the file opened when no source is given).
    package let path: String
    private let source: ByteSource
    private var buffer: [UInt8] = []
    private var start = 0
    private var end = 0
    private var eof = false
    /// The 1-based number of the line last returned.
    package private(set) var lineNumber = 0

    /// Reads `source`, or the plain file at `path` when nil. Throws `QDFError` (file: `path`)
    /// if the file cannot be opened.
    package init(path: String, source: ByteSource? = nil) throws {
        self.path = path
        self.source = try source ?? FileByteSource(path: path)
        buffer = [UInt8](repeating: 0, count: 1 << 16)
    }


    deinit { source.close() }

    /// The next line without its line terminator (invalid UTF-8 replaced by U+FFFD), or nil
    /// at the end of the file. Throws the source's `QDFError` on a read error.
    package func nextLine() throws -> String? {
        while true {
            // Look for a newline in the buffered bytes.
            if let nl = buffer[start..<end].firstIndex(of: 10) {
                let line = makeLine(start, nl)
                start = nl + 1
                return line
            }
            if eof {
                if start < end {
                    let line = makeLine(start, end)
                    start = end
                    return line
                }
                return nil
            }
            // Compact and refill.
            if start > 0 {
                let n = end - start
                if n > 0 { buffer.withUnsafeMutableBufferPointer { p in
                    _ = memmove(p.baseAddress!, p.baseAddress! + start, n) } }
                start = 0; end = n
            }
            if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
            let capacity = buffer.count - end
            let got = try buffer.withUnsafeMutableBufferPointer { p in
                try source.read(into: p.baseAddress! + end, count: capacity)
            }
            if got == 0 { eof = true } else { end += got }
        }
    }

    private func makeLine(_ from: Int, _ to: Int) -> String {
        lineNumber += 1
        var a = from, b = to
        if b > a && buffer[b - 1] == 13 { b -= 1 }  // CRLF
        if lineNumber == 1 && b - a >= 3 && buffer[a] == 0xEF && buffer[a + 1] == 0xBB && buffer[a + 2] == 0xBF { a += 3 }
        return String(decoding: buffer[a..<b], as: UTF8.self)
    }

    /// A `QDFError` located at `path` and the line last read (`lineNumber`), to throw.
    package func error(_ message: String) -> QDFError { QDFError(message, file: path, line: lineNumber) }
}

/// Splits a line on spaces and tabs.
@inline(__always)
package func tokens(_ line: String) -> [Substring] {
    line.split(whereSeparator: { $0 == " " || $0 == "\t" })
}

/// Parses a finite floating-point number, also accepting Fortran "D" exponents and
/// Mathematica's "*^" exponent (as in QM9's original files).
package func parseNumber(_ s: Substring) -> Double? {
    if let v = Double(s) { return v.isFinite ? v : nil }
    var t = String(s)
    if t.contains("*^") { t = t.replacingOccurrences(of: "*^", with: "e") }
    else if t.contains("D") || t.contains("d") { t = t.replacingOccurrences(of: "D", with: "e").replacingOccurrences(of: "d", with: "e") }
    else { return nil }
    guard let v = Double(t), v.isFinite else { return nil }
    return v
}
