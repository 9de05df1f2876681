// Compressed byte sources: gzip files (zlib), raw deflate streams (zip entries, zlib)
// and bzip2 streams (libbz2), plus a byte range of a file. All stream through a fixed
// input buffer, so a large archive is never held in memory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuantumDeepField
import CZlib
import CBzip2

/// A gzip-compressed file (also reads a plain file: zlib passes uncompressed data through).
/// Concatenated gzip members are read one after another.
package final class GzipByteSource: ByteSource {
    public let path: String
    private var file: gzFile?

    public init(path: String) throws {
        self.path = path
        // Open with open(2) first, so a missing file gives the system's message.
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw QDFError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        guard let f = gzdopen(fd, "rb") else {
            _ = Glibc.close(fd)
            throw QDFError("cannot open as gzip", file: path)
        }
        gzbuffer(f, 1 << 17)
        file = f
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        guard let f = file else { return 0 }
        let n = gzread(f, buffer, UInt32(min(count, Int(Int32.max))))
        if n < 0 {
            var code: Int32 = 0
            let msg = gzerror(f, &code).map { String(cString: $0) } ?? "unknown error"
            throw QDFError("corrupt gzip data: \(msg)", file: path)
        }
        return Int(n)
    }

    public func close() { if let f = file { gzclose(f); file = nil } }
    deinit { close() }
}

/// Bytes `offset ..< offset + length` of a file, read with pread (used for zip entries).
package final class FileRangeByteSource: ByteSource {
    public let path: String
    private var fd: Int32
    private var position: Int
    private let end: Int

    public init(path: String, offset: Int, length: Int) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        if fd < 0 { throw QDFError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        position = offset
        end = offset + length
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let want = min(count, end - position)
        if want <= 0 { return 0 }
        while true {
            let n = pread(fd, buffer, want, off_t(position))
            if n > 0 { position += n; return n }
            if n == 0 { throw QDFError("file ends inside a zip entry (truncated archive?)", file: path) }
            if errno == EINTR { continue }
            throw QDFError("read error: \(String(cString: strerror(errno)))", file: path)
        }
    }

    public func close() { if fd >= 0 { _ = Glibc.close(fd); fd = -1 } }
    deinit { close() }
}

/// A raw deflate stream (no zlib or gzip header), as stored in zip entries.
package final class InflateByteSource: ByteSource {
    private let input: ByteSource
    private let name: String
    private var stream = z_stream()
    private var inBuffer: UnsafeMutablePointer<UInt8>
    private let inCapacity = 1 << 17
    private var finished = false
    private var open = false

    /// - Parameter name: the file (and entry) named in errors.
    package init(input: ByteSource, name: String) throws {
        self.input = input
        self.name = name
        inBuffer = .allocate(capacity: inCapacity)
        let rc = inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { inBuffer.deallocate(); throw QDFError("cannot start inflating (zlib error \(rc))", file: name) }
        open = true
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if finished || count == 0 { return 0 }
        stream.next_out = buffer.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = UInt32(min(count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 {
                let n = try input.read(into: inBuffer, count: inCapacity)
                if n == 0 { throw QDFError("compressed data ends early (truncated archive?)", file: name) }
                stream.next_in = inBuffer
                stream.avail_in = UInt32(n)
            }
            let rc = inflate(&stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END { finished = true; break }
            if rc != Z_OK && rc != Z_BUF_ERROR {
                let msg = stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                throw QDFError("corrupt deflate data: \(msg)", file: name)
            }
            // Produced some output: return it rather than block for more input.
            if Int(stream.avail_out) < count { break }
        }
        return count - Int(stream.avail_out)
    }

    public func close() {
        if open { inflateEnd(&stream); open = false; inBuffer.deallocate() }
        input.close()
    }
    deinit { close() }
}

/// A bzip2 stream (possibly several concatenated streams, as pbzip2 writes).
package final class Bzip2ByteSource: ByteSource {
    private let input: ByteSource
    private let name: String
    private var stream = bz_stream()
    private var inBuffer: UnsafeMutablePointer<CChar>
    private let inCapacity = 1 << 17
    private var open = false
    private var inputEnded = false
    private var finished = false

    package init(input: ByteSource, name: String) throws {
        self.input = input
        self.name = name
        inBuffer = .allocate(capacity: inCapacity)
        try start()
    }

    private func start() throws {
        stream = bz_stream()
        let rc = BZ2_bzDecompressInit(&stream, 0, 0)
        if rc != BZ_OK { throw QDFError("cannot start bzip2 decompression (error \(rc))", file: name) }
        open = true
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if finished || count == 0 { return 0 }
        // Keep the unread input across a stream restart.
        stream.next_out = buffer.assumingMemoryBound(to: CChar.self)
        stream.avail_out = UInt32(min(count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEnded {
                let n = try input.read(into: inBuffer, count: inCapacity)
                if n == 0 { inputEnded = true } else {
                    stream.next_in = inBuffer
                    stream.avail_in = UInt32(n)
                }
            }
            if stream.avail_in == 0 && inputEnded {
                throw QDFError("bzip2 data ends early (truncated archive?)", file: name)
            }
            let rc = BZ2_bzDecompress(&stream)
            if rc == BZ_STREAM_END {
                // Another stream may follow.
                let nextIn = stream.next_in, availIn = stream.avail_in
                let nextOut = stream.next_out, availOut = stream.avail_out
                BZ2_bzDecompressEnd(&stream); open = false
                if availIn == 0 {
                    let n = try input.read(into: inBuffer, count: inCapacity)
                    if n == 0 { finished = true; return count - Int(availOut) }
                    try start()
                    stream.next_in = inBuffer; stream.avail_in = UInt32(n)
                } else {
                    try start()
                    stream.next_in = nextIn; stream.avail_in = availIn
                }
                stream.next_out = nextOut; stream.avail_out = availOut
                continue
            }
            if rc != BZ_OK {
                throw QDFError("corrupt bzip2 data (libbz2 error \(rc))", file: name)
            }
            if Int(stream.avail_out) < count { break }
        }
        return count - Int(stream.avail_out)
    }

    public func close() {
        if open { BZ2_bzDecompressEnd(&stream); open = false }
        input.close()
    }
    deinit { close(); inBuffer.deallocate() }
}

public enum Gzip {
    /// The version of the zlib linked in.
    public static var zlibVersion: String { String(cString: CZlib.zlibVersion()) }

    /// Compresses `data` into the gzip format (for writing .gz files).
    public static func compress(_ data: Data, level: Int32 = 6) throws -> Data {
        var s = z_stream()
        var rc = deflateInit2_(&s, level, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY,
                               ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw QDFError("cannot start gzip compression (zlib error \(rc))") }
        defer { deflateEnd(&s) }
        var out = Data(count: Int(deflateBound(&s, UInt(data.count))) + 64)
        let produced: Int = try data.withUnsafeBytes { inp in
            try out.withUnsafeMutableBytes { o in
                s.next_in = UnsafeMutablePointer(mutating: inp.bindMemory(to: UInt8.self).baseAddress)
                s.avail_in = UInt32(data.count)
                s.next_out = o.bindMemory(to: UInt8.self).baseAddress
                s.avail_out = UInt32(o.count)
                rc = deflate(&s, Z_FINISH)
                guard rc == Z_STREAM_END else { throw QDFError("gzip compression failed (zlib error \(rc))") }
                return o.count - Int(s.avail_out)
            }
        }
        return out.prefix(produced)
    }

    /// The CRC-32 of `data` (as zip and gzip use).
    public static func crc32(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { p in
            UInt32(CZlib.crc32(0, p.bindMemory(to: UInt8.self).baseAddress, UInt32(p.count)))
        }
    }
}

/// Opens a file as a byte source: `.gz` files are decompressed, `.bz2` files too.
package func openByteSource(_ path: String) throws -> ByteSource {
    let lower = path.lowercased()
    if lower.hasSuffix(".gz") { return try GzipByteSource(path: path) }
    if lower.hasSuffix(".bz2") { return try Bzip2ByteSource(input: FileByteSource(path: path), name: path) }
    return try FileByteSource(path: path)
}

/// A line reader over a file that is decompressed while it is read when its name ends
/// in .gz or .bz2 (`openByteSource`).
package func openLines(_ path: String) throws -> LineReader {
    try LineReader(path: path, source: openByteSource(path))
}
