// Archive readers: zip (Python wheels) and tar (QM9's dsgdb9nsd.xyz.tar.bz2).
// Entries are streamed: a zip entry is inflated as it is read (and its CRC-32 and size
// checked at its end); a tar archive is read entry by entry from any byte source.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuantumDeepField
import CZlib

/// Reads exactly `count` bytes, or fewer at the end of the source.
func readFully(_ source: ByteSource, into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
    var got = 0
    while got < count {
        let n = try source.read(into: buffer + got, count: count - got)
        if n == 0 { break }
        got += n
    }
    return got
}

// MARK: - Zip

public struct ZipEntry: Sendable {
    public var name: String
    /// 0 stored, 8 deflate.
    public var method: Int
    public var crc32: UInt32
    public var compressedSize: Int
    public var size: Int
    var localHeaderOffset: Int
}

public final class ZipArchive {
    public let path: String
    public let entries: [ZipEntry]

    public init(path: String) throws {
        self.path = path
        let fd = Glibc.open(path, O_RDONLY)
        if fd < 0 { throw QDFError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { _ = Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw QDFError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        let fileSize = Int(st.st_size)
        func readAt(_ offset: Int, _ count: Int) throws -> [UInt8] {
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            guard n == count else { throw QDFError("not a zip file: cannot read \(count) bytes at offset \(offset)", file: path) }
            return b
        }
        // End of central directory: the last 22 bytes, or earlier when there is a comment.
        let tailSize = min(fileSize, 22 + 65535)
        guard tailSize >= 22 else { throw QDFError("not a zip file (too short)", file: path) }
        let tail = try readAt(fileSize - tailSize, tailSize)
        var eocd = -1
        var i = tailSize - 22
        while i >= 0 {
            if tail[i] == 0x50 && tail[i + 1] == 0x4B && tail[i + 2] == 5 && tail[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw QDFError("not a zip file (no end-of-central-directory record)", file: path) }
        let count = Int(le16(tail, eocd + 10))
        let cdSize = Int(le32(tail, eocd + 12))
        let cdOffset = Int(le32(tail, eocd + 16))
        if count == 0xFFFF || cdOffset == 0xFFFF_FFFF {
            throw QDFError("zip64 archives are not supported", file: path)
        }
        guard cdOffset + cdSize <= fileSize else { throw QDFError("corrupt zip: central directory beyond the end of the file", file: path) }
        let cd = try readAt(cdOffset, cdSize)
        var list = [ZipEntry]()
        var p = 0
        for k in 0..<count {
            guard p + 46 <= cd.count, le32(cd, p) == 0x0201_4B50 else {
                throw QDFError("corrupt zip: central directory entry \(k + 1) is damaged", file: path)
            }
            let nameLen = Int(le16(cd, p + 28)), extraLen = Int(le16(cd, p + 30)), commentLen = Int(le16(cd, p + 32))
            guard p + 46 + nameLen + extraLen + commentLen <= cd.count else {
                throw QDFError("corrupt zip: central directory entry \(k + 1) is damaged", file: path)
            }
            var e = ZipEntry(name: String(decoding: cd[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self),
                             method: Int(le16(cd, p + 10)), crc32: le32(cd, p + 16),
                             compressedSize: Int(le32(cd, p + 20)), size: Int(le32(cd, p + 24)),
                             localHeaderOffset: Int(le32(cd, p + 42)))
            if e.size == 0xFFFF_FFFF || e.compressedSize == 0xFFFF_FFFF || e.localHeaderOffset == 0xFFFF_FFFF {
                throw QDFError("zip64 entry '\(e.name)' is not supported", file: path)
            }
            // Data starts after the local header, whose extra field may differ from the central one.
            let local = try readAt(e.localHeaderOffset, 30)
            guard le32(local, 0) == 0x0403_4B50 else {
                throw QDFError("corrupt zip: bad local header for '\(e.name)'", file: path)
            }
            e.localHeaderOffset += 30 + Int(le16(local, 26)) + Int(le16(local, 28))
            guard e.localHeaderOffset + e.compressedSize <= fileSize else {
                throw QDFError("corrupt zip: entry '\(e.name)' extends beyond the end of the file (truncated?)", file: path)
            }
            list.append(e)
            p += 46 + nameLen + extraLen + commentLen
        }
        entries = list
    }

    /// A byte source for an entry's uncompressed content; its size and CRC-32 are checked at the end.
    package func open(_ entry: ZipEntry) throws -> ByteSource {
        let name = "\(path)!\(entry.name)"
        let raw = try FileRangeByteSource(path: path, offset: entry.localHeaderOffset, length: entry.compressedSize)
        let body: ByteSource
        switch entry.method {
        case 0: body = raw
        case 8: body = try InflateByteSource(input: raw, name: name)
        default: throw QDFError("zip compression method \(entry.method) is not supported (only stored and deflate)", file: name)
        }
        return CheckedByteSource(body, size: entry.size, crc: entry.crc32, name: name)
    }
}

@inline(__always) private func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
@inline(__always) private func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

/// Counts bytes and computes the CRC-32 as they pass; checks both at the end.
final class CheckedByteSource: ByteSource {
    private let inner: ByteSource
    private let size: Int
    private let crc: UInt32
    private let name: String
    private var count = 0
    private var running: uLong = 0

    init(_ inner: ByteSource, size: Int, crc: UInt32, name: String) {
        self.inner = inner; self.size = size; self.crc = crc; self.name = name
    }

    func read(into buffer: UnsafeMutableRawPointer, count want: Int) throws -> Int {
        let n = try inner.read(into: buffer, count: want)
        if n > 0 {
            running = CZlib.crc32(running, buffer.assumingMemoryBound(to: UInt8.self), UInt32(n))
            count += n
            if count > size { throw QDFError("zip entry is longer than its recorded size \(size)", file: name) }
        } else if want > 0 {
            if count != size { throw QDFError("zip entry has \(count) bytes, its header says \(size) (truncated?)", file: name) }
            if UInt32(running) != crc { throw QDFError("zip entry fails its CRC-32 check (corrupt archive)", file: name) }
        }
        return n
    }

    func close() { inner.close() }
}

// MARK: - Tar

public struct TarEntry: Sendable {
    public var name: String
    public var size: Int
    /// "0" (or NUL) regular file, "5" folder, others as in POSIX tar.
    public var type: UInt8
    public var isFile: Bool { type == 0x30 || type == 0 }
}

/// Reads a tar stream (POSIX ustar, GNU long names) entry by entry.
public final class TarReader {
    private let source: ByteSource
    public let name: String
    private var header = [UInt8](repeating: 0, count: 512)
    private var remaining = 0  // unread bytes of the current entry, padding included
    private var offset = 0

    package init(source: ByteSource, name: String) {
        self.source = source
        self.name = name
    }

    private func readBlock(_ b: inout [UInt8], _ count: Int) throws -> Int {
        let n = try b.withUnsafeMutableBytes { try readFully(source, into: $0.baseAddress!, count: count) }
        offset += n
        return n
    }

    private func skip(_ count: Int) throws {
        var left = count
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while left > 0 {
            let n = try readBlock(&scratch, min(left, scratch.count))
            if n == 0 { throw QDFError("tar archive ends inside an entry (truncated?)", file: name) }
            left -= n
        }
    }

    /// The next entry's header, or nil at the end of the archive.
    public func next() throws -> TarEntry? {
        if remaining > 0 { try skip(remaining); remaining = 0 }
        var longName: String? = nil
        while true {
            let n = try readBlock(&header, 512)
            if n == 0 { return nil }
            if n < 512 { throw QDFError("tar archive ends inside a header at byte \(offset - n) (truncated?)", file: name) }
            if header.allSatisfy({ $0 == 0 }) { return nil }
            // Checksum: the header's bytes with the checksum field read as spaces.
            var sum = 0
            for i in 0..<512 { sum += (i >= 148 && i < 156) ? 32 : Int(header[i]) }
            guard let recorded = octal(148, 8), recorded == sum else {
                throw QDFError("not a tar archive, or corrupt: bad header checksum at byte \(offset - 512)", file: name)
            }
            guard let size = octal(124, 12) else {
                throw QDFError("corrupt tar header at byte \(offset - 512): bad size field", file: name)
            }
            let padded = (size + 511) / 512 * 512
            let type = header[156]
            if type == UInt8(ascii: "L") {  // GNU long name: the next entry's name is the data
                var data = [UInt8](repeating: 0, count: padded)
                guard try readBlock(&data, padded) == padded else {
                    throw QDFError("tar archive ends inside an entry (truncated?)", file: name)
                }
                longName = String(decoding: data.prefix(size).prefix(while: { $0 != 0 }), as: UTF8.self)
                continue
            }
            if type == UInt8(ascii: "x") || type == UInt8(ascii: "g") {  // pax headers: skip
                try skip(padded)
                continue
            }
            var entryName = longName ?? cString(0, 100)
            if longName == nil, header[257..<262].elementsEqual("ustar".utf8) {
                let prefix = cString(345, 155)
                if !prefix.isEmpty { entryName = prefix + "/" + entryName }
            }
            remaining = padded
            currentSize = size
            return TarEntry(name: entryName, size: size, type: type)
        }
    }

    private var currentSize = 0

    /// The content of the entry last returned by `next()` (read once).
    public func readData() throws -> [UInt8] {
        var data = [UInt8](repeating: 0, count: remaining)
        guard try readBlock(&data, remaining) == remaining else {
            throw QDFError("tar archive ends inside an entry (truncated?)", file: name)
        }
        remaining = 0
        data.removeLast(data.count - currentSize)
        return data
    }

    private func cString(_ at: Int, _ len: Int) -> String {
        String(decoding: header[at..<(at + len)].prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    private func octal(_ at: Int, _ len: Int) -> Int? {
        var v = 0, digits = 0
        for b in header[at..<(at + len)] {
            if b == 0 || b == 32 { if digits > 0 { break } else { continue } }
            guard b >= 48 && b <= 55 else { return nil }
            v = v * 8 + Int(b - 48); digits += 1
        }
        return digits > 0 ? v : nil
    }

    public func close() { source.close() }
}
