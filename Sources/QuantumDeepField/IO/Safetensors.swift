import Foundation

// Safetensors: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Reading validates everything before it
// allocates: header length against the file size, offsets inside the data and not
// overlapping, byte counts against shapes, known dtypes.

/// A dense Float32 tensor: a shape and its values, row-major (last index fastest).
public struct Tensor: Sendable, Equatable {
    /// The dimensions, e.g. [N_t, dim] for `coefficient.weight`; [] is a scalar.
    public var shape: [Int]
    /// The product of `shape` values, row-major.
    public var values: [Float]
    /// A tensor; traps (precondition) unless `values.count` is the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
    /// The number of values.
    public var count: Int { values.count }
}

/// The contents of a safetensors file (docs/model.md §10): named tensors and string
/// metadata. A value type; `Sendable`.
public struct SafetensorsFile: Sendable {
    /// Tensors in file order (by data offset) when parsed; `serialized()` writes them in
    /// this order.
    public var tensors: [(name: String, tensor: Tensor)]
    /// The `__metadata__` object (all values strings).
    public var metadata: [String: String]

    /// A file from its tensors (names should be unique) and metadata.
    public init(tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The first tensor named `name` (linear search), or nil.
    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

    /// The largest header accepted (the reference model's is ~2.5 KB).
    public static let maxHeaderBytes = 64 << 20

    /// Reads and parses the file at `path` (loaded whole into memory). Throws `QDFError`
    /// (file: `path`) if it is missing, unreadable or invalid (see `parse`).
    public static func read(path: String) throws -> SafetensorsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw QDFError("cannot read the model file (missing or unreadable)", file: path)
        }
        return try parse(data, path: path)
    }

    /// Parses safetensors bytes; F32, F64, F16 and BF16 tensors are converted to Float32.
    /// Throws `QDFError` (file: `path`, no line) for a bad header length or JSON, non-string
    /// metadata, an unknown dtype, or offsets outside the data, overlapping or not matching
    /// the shape.
    public static func parse(_ data: Data, path: String = "<memory>") throws -> SafetensorsFile {
        func fail(_ m: String) -> QDFError { QDFError("not a valid safetensors file: \(m)", file: path) }
        guard data.count >= 8 else { throw fail("\(data.count) bytes, shorter than the 8-byte header length") }
        let bytes = [UInt8](data)
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n >= 2, n <= UInt64(maxHeaderBytes), n <= UInt64(bytes.count - 8) else {
            throw fail("header length \(n) does not fit the file's \(bytes.count) bytes")
        }
        let headerData = Data(bytes[8..<(8 + Int(n))])
        guard let obj = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let dataStart = 8 + Int(n)
        let dataCount = bytes.count - dataStart
        var metadata = [String: String]()
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (key, value) in obj {
            if key == "__metadata__" {
                guard let md = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in md {
                    guard let s = v as? String else { throw fail("metadata '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offs = info["data_offsets"] as? [Any], offs.count == 2 else {
                throw fail("tensor '\(key)' lacks dtype, shape or data_offsets")
            }
            var shape = [Int]()
            for s in shapeAny {
                guard let d = (s as? NSNumber)?.int64Value, d >= 0, d < (1 << 40) else { throw fail("tensor '\(key)' has an invalid shape") }
                shape.append(Int(d))
            }
            guard let b = (offs[0] as? NSNumber)?.int64Value, let e = (offs[1] as? NSNumber)?.int64Value,
                  b >= 0, e >= b, e <= Int64(dataCount) else {
                throw fail("tensor '\(key)' has data offsets outside the file's \(dataCount) data bytes")
            }
            let size: Int
            switch dtype {
            case "F32": size = 4
            case "F64": size = 8
            case "F16", "BF16": size = 2
            default: throw fail("tensor '\(key)' has dtype \(dtype); only F32, F64, F16 and BF16 are supported")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= (1 << 34) else { throw fail("tensor '\(key)' has a shape too large") }
                count = p
            }
            guard Int(e - b) == count * size else {
                throw fail("tensor '\(key)': shape \(shape) needs \(count * size) bytes, offsets give \(e - b)")
            }
            entries.append((key, dtype, shape, Int(b), Int(e)))
        }
        entries.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.end < $1.end) }
        for i in 1..<max(entries.count, 1) where entries[i].begin < entries[i - 1].end {
            throw fail("tensors '\(entries[i - 1].name)' and '\(entries[i].name)' overlap")
        }
        var tensors = [(name: String, tensor: Tensor)]()
        for e in entries {
            let count = e.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            let base = dataStart + e.begin
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    switch e.dtype {
                    case "F32":
                        values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self).littleEndian)
                    case "F64":
                        values[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: base + 8 * i, as: UInt64.self).littleEndian))
                    case "F16":
                        values[i] = Float(float16Bits: raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian)
                    default: // BF16
                        values[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self).littleEndian) << 16)
                    }
                }
            }
            tensors.append((e.name, Tensor(shape: e.shape, values: values)))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    /// The file's bytes: F32 tensors in the given order, metadata keys sorted, header padded
    /// with spaces to a multiple of 8 bytes.
    public func serialized() -> Data {
        var header = "{"
        var parts = [String]()
        if !metadata.isEmpty {
            let md = metadata.keys.sorted().map { "\(jsonString($0)): \(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\": {" + md.joined(separator: ", ") + "}")
        }
        var offset = 0
        for (name, t) in tensors {
            let shape = t.shape.map(String.init).joined(separator: ", ")
            parts.append("\(jsonString(name)): {\"dtype\": \"F32\", \"shape\": [\(shape)], \"data_offsets\": [\(offset), \(offset + 4 * t.count)]}")
            offset += 4 * t.count
        }
        header += parts.joined(separator: ", ") + "}"
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data(capacity: 8 + h.count + offset)
        var n = UInt64(h.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        for (_, t) in tensors {
            t.values.withUnsafeBufferPointer { p in
                // Float32 little-endian, as on every platform Swift runs on here.
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                               count: 4 * p.count))
            }
        }
        return out
    }

    /// Writes `serialized()` to `path` atomically: a temporary file beside the target, then
    /// rename. Throws `QDFError` (file: `path`) on an I/O failure.
    public func write(path: String) throws {
        try writeAtomically(serialized(), to: path)
    }
}

extension Float {
    init(float16Bits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1f)
        let frac = UInt32(h & 0x3ff)
        if exp == 0 {
            let v = Float(frac) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -v : v
        } else if exp == 31 {
            self = Float(bitPattern: sign | 0x7f80_0000 | (frac << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
        }
    }
}

/// A JSON string literal with the necessary escapes (control characters and DEL as \u
/// escapes, so the text is also safe to print). Shared by the model file's header and the
/// JSON prediction outputs.
package func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04x", u.value) }
            else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
