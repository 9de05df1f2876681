import Foundation
import QuantumDeepField

// Reading state_dicts written by torch.save, in both of its formats:
//
// Legacy (torch < 1.6, or _use_new_zipfile_serialization=False): five pickles in a row,
//   magic number 0x1950a86a20f9469cfc6c, protocol version 1001, system info
//   {protocol_version, little_endian, type_sizes}, the state_dict (storages appear as
//   persistent ids ('storage', torch.FloatStorage, key, location, numel, view_metadata)),
//   the list of storage keys; then for each key in that list its element count as an
//   8-byte little-endian integer followed by the raw elements.
// Zip (torch ≥ 1.6): an uncompressed zip with `<name>/data.pkl` (the state_dict,
//   persistent ids ('storage', torch.FloatStorage, key, location, numel)) and each
//   storage's raw elements in `<name>/data/<key>`; `<name>/byteorder` says "little".
//
// A tensor is a strided view (storage offset, size, stride) of its storage; only
// float32 storages are imported.

public struct TorchStateDict: Sendable {
    public enum Format: String, Sendable { case legacy, zip }
    public var format: Format
    /// Tensors in the state_dict's order, contiguous row-major.
    public var tensors: [(name: String, tensor: Tensor)]
}

public enum TorchFile {
    /// 0x1950a86a20f9469cfc6c, as LONG1 stores it (little-endian).
    static let magicNumber: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
    static let legacyProtocolVersion = 1001

    /// Reads a state_dict saved by torch.save (either format).
    public static func read(path: String) throws -> TorchStateDict {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw QDFError("cannot read the PyTorch model file (missing or unreadable)", file: path)
        }
        return try parse([UInt8](data), path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String = "<memory>") throws -> TorchStateDict {
        if StoredZip.looksLikeZip(bytes) { return try parseZip(bytes, path: path) }
        return try parseLegacy(bytes, path: path)
    }

    // MARK: - Legacy format

    static func parseLegacy(_ bytes: [UInt8], path: String) throws -> TorchStateDict {
        func fail(_ m: String) -> QDFError { QDFError(m, file: path) }
        guard bytes.count >= 2, bytes[0] == 0x80 else {
            throw fail("not a torch.save file: neither a zip archive nor a pickle (first byte \(bytes.first.map { String(format: "0x%02x", $0) } ?? "none"))")
        }
        var position = 0
        func next(persistentLoad: ((PickleValue) throws -> PickleValue)? = nil) throws -> PickleValue {
            var u = Unpickler(bytes: bytes, position: position, path: path, persistentLoad: persistentLoad)
            let v = try u.load()
            position = u.position
            return v
        }
        guard case .bigInt(let magic) = try next(), magic == magicNumber else {
            throw fail("not a legacy torch.save file: wrong magic number (expected 0x1950a86a20f9469cfc6c)")
        }
        guard case .int(let version) = try next(), version == legacyProtocolVersion else {
            throw fail("unsupported legacy torch.save protocol version (expected \(legacyProtocolVersion))")
        }
        guard case .dictionary(let sysInfo) = try next() else { throw fail("the torch.save system information is not a dict") }
        if case .bool(false)? = sysInfo["little_endian"] {
            throw fail("the model was saved on a big-endian machine; only little-endian files are supported")
        }

        var storages: [String: TorchStorageReference] = [:]
        let root = try next { pid in try storageReference(pid, legacy: true, path: path, storages: &storages) }

        guard case .list(let keyList) = try next() else { throw fail("the list of storage keys is missing or not a list") }
        var raw: [String: Range<Int>] = [:]
        for item in keyList.items {
            guard case .string(let key) = item else { throw fail("a storage key is a \(item.kind), not a str") }
            guard position + 8 <= bytes.count else {
                throw fail("the file ends early at byte \(position), before storage '\(key)' (truncated?)")
            }
            var count: UInt64 = 0
            for i in 0..<8 { count |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            guard let ref = storages[key] else { throw fail("storage '\(key)' is listed but no tensor uses it") }
            guard count == UInt64(ref.count) else {
                throw fail("storage '\(key)' has \(count) elements in the file but \(ref.count) in its pickled reference")
            }
            let n = ref.count * ref.type.elementSize
            guard n <= bytes.count - position else {
                throw fail("storage '\(key)' needs \(n) bytes at byte \(position) but the file has only \(bytes.count - position) left (truncated?)")
            }
            raw[key] = position..<(position + n)
            position += n
        }
        guard position == bytes.count else {
            throw fail("\(bytes.count - position) unexpected bytes after the last storage (at byte \(position))")
        }
        return TorchStateDict(format: .legacy, tensors: try tensors(root, bytes: bytes, raw: raw, path: path))
    }

    // MARK: - Zip format

    static func parseZip(_ bytes: [UInt8], path: String) throws -> TorchStateDict {
        func fail(_ m: String) -> QDFError { QDFError(m, file: path) }
        let zip = try StoredZip(bytes: bytes, path: path)
        let pickles = zip.entries.filter { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        guard let pkl = pickles.min(by: { $0.name.count < $1.name.count }) else {
            throw fail("a zip archive without data.pkl: not a torch.save file")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if let order = zip.entry(named: prefix + "byteorder") {
            let text = String(decoding: bytes[try zip.range(of: order)], as: UTF8.self)
            guard text == "little" else {
                throw fail("the model was saved with byte order '\(text)'; only little-endian files are supported")
            }
        }
        let pickleBytes = Array(bytes[try zip.range(of: pkl)])
        var storages: [String: TorchStorageReference] = [:]
        var u = Unpickler(bytes: pickleBytes, path: path + ":" + pkl.name) { pid in
            try storageReference(pid, legacy: false, path: path, storages: &storages)
        }
        let root = try u.load()
        guard u.position == pickleBytes.count else {
            throw fail("\(pkl.name) has \(pickleBytes.count - u.position) bytes after its end")
        }
        var raw: [String: Range<Int>] = [:]
        for (key, ref) in storages {
            let name = prefix + "data/" + key
            guard let e = zip.entry(named: name) else { throw fail("storage '\(key)' is missing: no entry \(name)") }
            let r = try zip.range(of: e)
            let n = ref.count * ref.type.elementSize
            guard r.count == n else {
                throw fail("entry \(name) has \(r.count) bytes but its storage of \(ref.count) \(ref.type.dtype) elements needs \(n)")
            }
            raw[key] = r
        }
        return TorchStateDict(format: .zip, tensors: try tensors(root, bytes: bytes, raw: raw, path: path))
    }

    // MARK: - Persistent ids and tensors

    /// Resolves ('storage', type, key, location, numel[, view_metadata]) and records it.
    static func storageReference(_ pid: PickleValue, legacy: Bool, path: String,
                                 storages: inout [String: TorchStorageReference]) throws -> PickleValue {
        func fail(_ m: String) -> QDFError { QDFError("storage reference: \(m)", file: path) }
        guard case .tuple(let t) = pid, t.count == (legacy ? 6 : 5), case .string("storage") = t[0] else {
            throw fail("a persistent id that is not ('storage', type, key, location, size\(legacy ? ", view" : ""))")
        }
        guard case .global(.storageType(let type)) = t[1] else { throw fail("the storage type is a \(t[1].kind)") }
        guard case .string(let key) = t[2] else { throw fail("the storage key is a \(t[2].kind), not a str") }
        guard case .int(let count) = t[4], count >= 0, count < (1 << 40) else { throw fail("storage '\(key)' has an invalid size") }
        var ref = TorchStorageReference(key: key, type: type, count: count, viewCount: count)
        if let old = storages[key] {
            guard old.type == type, old.count == count else { throw fail("storage '\(key)' is described twice, differently") }
        }
        storages[key] = ref
        if legacy, case .tuple(let view) = t[5] {
            // (view_key, offset, view_size): a slice of the root storage.
            guard view.count == 3, case .int(let offset) = view[1], case .int(let size) = view[2],
                  offset >= 0, size >= 0, offset + size <= count else {
                throw fail("storage '\(key)' has an invalid view")
            }
            ref.viewOffset = offset
            ref.viewCount = size
        } else if legacy, case .none = t[5] {
        } else if legacy {
            throw fail("storage '\(key)' has view metadata of type \(t[5].kind)")
        }
        return .storage(ref)
    }

    /// The state_dict's tensors, gathered from their storages into contiguous arrays.
    static func tensors(_ root: PickleValue, bytes: [UInt8], raw: [String: Range<Int>],
                        path: String) throws -> [(name: String, tensor: Tensor)] {
        func fail(_ m: String) -> QDFError { QDFError(m, file: path) }
        guard case .dictionary(let d) = root else {
            throw fail("the file holds a \(root.kind), not a state_dict (save with torch.save(model.state_dict(), path))")
        }
        var out: [(name: String, tensor: Tensor)] = []
        for (k, v) in d.entries {
            guard case .string(let name) = k else { throw fail("a state_dict key is not a str") }
            guard case .tensor(let t) = v else { throw fail("state_dict entry '\(name)' is a \(v.kind), not a tensor") }
            guard t.storage.type.isFloat32 else {
                throw fail("tensor '\(name)' is stored as torch.\(t.storage.type.name) (\(t.storage.type.dtype)); "
                    + "only float32 tensors (torch.FloatStorage) can be imported")
            }
            guard let r = raw[t.storage.key] else { throw fail("tensor '\(name)': storage '\(t.storage.key)' has no data") }
            out.append((name, try gather(t, bytes: bytes, storageStart: r.lowerBound, name: name, path: path)))
        }
        return out
    }

    /// The most elements a view with repeated elements (stride 0) may have (64 MiB of float32).
    public static let maxExpandedElements = 1 << 24

    /// Copies a strided float32 view into a contiguous row-major tensor, after checking
    /// that every element it touches lies inside its storage (view).
    static func gather(_ t: TorchTensorReference, bytes: [UInt8], storageStart: Int, name: String,
                       path: String) throws -> Tensor {
        func fail(_ m: String) -> QDFError { QDFError("tensor '\(name)': \(m)", file: path) }
        var count = 1
        var last = t.storageOffset  // the highest element index the view touches
        for (n, s) in zip(t.shape, t.strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            guard !o1, c <= (1 << 34) else { throw fail("shape \(t.shape) is too large") }
            count = c
            if n > 0 {
                let (span, o2) = (n - 1).multipliedReportingOverflow(by: s)
                let (l, o3) = last.addingReportingOverflow(span)
                guard !o2, !o3 else { throw fail("strides \(t.strides) overflow") }
                last = l
            }
        }
        let available = t.storage.viewCount
        // A view has more elements than its storage only by repeating them (stride 0,
        // torch.expand). Such views are limited to `maxExpandedElements`, so that the
        // allocation below is bounded by the file's size or that limit.
        guard count <= available || count <= maxExpandedElements else {
            throw fail("size \(t.shape) with stride \(t.strides) has \(count) elements, more than its storage's \(available) "
                + "and than the \(maxExpandedElements) an expanded view may have")
        }
        if count > 0 {
            guard last < available else {
                throw fail("size \(t.shape), stride \(t.strides) and offset \(t.storageOffset) reach element \(last) "
                    + "of a storage of \(available)")
            }
        }
        var values = [Float](repeating: 0, count: count)
        if count == 0 { return Tensor(shape: t.shape, values: values) }
        let base = storageStart + 4 * (t.storage.viewOffset + t.storageOffset)
        let rank = t.shape.count
        bytes.withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { out in
                // Row-major contiguous strides: one copy.
                var contiguous = true
                var expected = 1
                for d in stride(from: rank - 1, through: 0, by: -1) where t.shape[d] != 1 {
                    if t.strides[d] != expected { contiguous = false; break }
                    expected *= t.shape[d]
                }
                if contiguous {
                    for i in 0..<count {
                        out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self).littleEndian)
                    }
                    return
                }
                // General case: an odometer over the indices, innermost dimension fastest.
                var index = [Int](repeating: 0, count: rank)
                var element = 0
                for i in 0..<count {
                    out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * element, as: UInt32.self).littleEndian)
                    var d = rank - 1
                    while d >= 0 {
                        index[d] += 1
                        element += t.strides[d]
                        if index[d] < t.shape[d] { break }
                        element -= t.strides[d] * t.shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return Tensor(shape: t.shape, values: values)
    }
}
