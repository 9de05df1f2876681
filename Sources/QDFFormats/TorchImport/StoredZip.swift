import QuantumDeepField
import CZlib

// A small reader for the zip archives torch.save writes: it reads the central
// directory and returns entries stored uncompressed (method 0), which is how torch
// writes them, after checking their CRC-32. Compressed entries and zip64 archives
// (over 4 GB) are refused with a message.

public struct StoredZip {
    public struct Entry: Sendable {
        public let name: String
        public let method: Int
        public let crc32: UInt32
        public let compressedSize: Int
        public let size: Int
        public let localHeaderOffset: Int
    }

    public let bytes: [UInt8]
    public let path: String
    /// Entries in central-directory order.
    public private(set) var entries: [Entry] = []

    /// True when the bytes start like a zip archive (a local file header).
    public static func looksLikeZip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4b && bytes[2] == 0x03 && bytes[3] == 0x04
    }

    func fail(_ m: String) -> QDFError { QDFError("not a valid zip archive: \(m)", file: path) }

    private func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    private func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }

    public init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        // End of central directory: 22 bytes plus a comment of up to 65535 bytes, at the end.
        var eocd = -1
        var i = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65535)
        while i >= lowest {
            if bytes[i] == 0x50 && bytes[i + 1] == 0x4b && bytes[i + 2] == 0x05 && bytes[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (truncated?)") }
        let count = u16(eocd + 10)
        let cdSize = u32(eocd + 12)
        let cdOffset = u32(eocd + 16)
        if count == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            throw fail("a zip64 archive (over 4 GB or 65535 entries) is not supported")
        }
        guard cdOffset + cdSize <= eocd else { throw fail("the central directory lies outside the file (truncated?)") }
        var p = cdOffset
        for n in 0..<count {
            guard p + 46 <= eocd, u32(p) == 0x0201_4b50 else { throw fail("central directory entry \(n) is damaged") }
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            guard p + 46 + nameLength + extraLength + commentLength <= eocd else {
                throw fail("central directory entry \(n) runs past the directory")
            }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            entries.append(Entry(name: name, method: u16(p + 10), crc32: UInt32(u32(p + 16)),
                                 compressedSize: u32(p + 20), size: u32(p + 24), localHeaderOffset: u32(p + 42)))
            p += 46 + nameLength + extraLength + commentLength
        }
    }

    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The byte range of a stored entry's contents, its CRC-32 checked.
    public func range(of e: Entry) throws -> Range<Int> {
        guard e.method == 0 else {
            throw fail("entry '\(e.name)' is compressed (method \(e.method)); torch.save stores entries uncompressed "
                + "(re-create the archive with `zip -0`)")
        }
        guard e.compressedSize == e.size else { throw fail("stored entry '\(e.name)' has different sizes") }
        let h = e.localHeaderOffset
        guard h + 30 <= bytes.count, u32(h) == 0x0403_4b50 else { throw fail("entry '\(e.name)' has no local header") }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard start + e.size <= bytes.count else {
            throw fail("entry '\(e.name)' needs \(e.size) bytes at byte \(start) but the file has \(bytes.count) (truncated?)")
        }
        let crc = bytes.withUnsafeBufferPointer { b in
            UInt32(CZlib.crc32(0, b.baseAddress! + start, UInt32(e.size)))
        }
        guard crc == e.crc32 else { throw fail("entry '\(e.name)' fails its CRC-32 check (damaged file)") }
        return start..<(start + e.size)
    }
}
