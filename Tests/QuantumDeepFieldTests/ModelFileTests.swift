import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Damaged or hostile model files are refused with a clear message, never a crash or a
/// huge allocation.
@Suite("Model files")
struct ModelFileTests {
    static func smallModel() throws -> QDFModel {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        dict.add(Molecule(id: "x", atomicNumbers: [6, 1], positions: [.zero, SIMD3(1, 0, 0)]), basis: basis)
        return try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 8, layerFunctional: 2, hiddenHK: 6, layerHK: 2),
                            dictionary: dict, metadata: ["unit": "eV"])
    }

    /// The header JSON of a safetensors file, and its data.
    static func split(_ d: Data) -> (header: String, data: Data) {
        let b = [UInt8](d)
        var n = 0
        for i in 0..<8 { n |= Int(b[i]) << (8 * i) }
        return (String(decoding: b[8..<(8 + n)], as: UTF8.self), Data(b[(8 + n)...]))
    }

    static func assemble(header: String, data: Data) -> Data {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data()
        var n = UInt64(h.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(data)
        return out
    }

    func expectRefused(_ data: Data, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("m.safetensors")
        try data.write(to: URL(fileURLWithPath: path))
        do {
            _ = try QDFModel.load(path: path)
            Issue.record("expected the model file to be refused", sourceLocation: sourceLocation)
        } catch let e as QDFError {
            #expect(e.file == path, sourceLocation: sourceLocation)
            #expect(e.message.contains(text), "got: \(e)", sourceLocation: sourceLocation)
        }
    }

    @Test("Save and load round trip: parameters, hyperparameters, dictionary and metadata")
    func roundTrip() throws {
        let m = try Self.smallModel()
        let dir = try TemporaryDirectory()
        try m.save(path: dir.file("m.safetensors"))
        let l = try QDFModel.load(path: dir.file("m.safetensors"))
        #expect(l.parameters == m.parameters && l.hyper == m.hyper && l.dictionary == m.dictionary)
        #expect(l.metadata["unit"] == "eV")
    }

    @Test("The reference model loads as it is", .enabled(if: Shared.available, Shared.skipMessage))
    func reference() throws {
        let m = try QDFModel.load(path: Shared.referenceModel)
        #expect(m.hyper.dim == 250 && m.hyper.layerFunctional == 3 && m.hyper.layerHK == 3 && m.hyper.hiddenHK == 250)
        #expect(m.dictionary.count == 60 && m.hyper.operation == .sum && m.hyper.outputs == 1)
        #expect(m.layout.totalCount == 1_570_248 / 4)
    }

    @Test("Truncated, corrupted, out-of-range, overlapping, mis-shaped and giant-header files are refused")
    func damaged() throws {
        let good = try Self.smallModel()
        let dir = try TemporaryDirectory()
        try good.save(path: dir.file("g.safetensors"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("g.safetensors")))
        let (header, data) = Self.split(bytes)

        try expectRefused(Data(bytes.prefix(5)), "shorter than the 8-byte header length")
        try expectRefused(Data(bytes.prefix(bytes.count - 10)), "outside the file")
        try expectRefused(Data(bytes.prefix(200)), "does not fit the file")
        // A header claiming 16 GiB.
        var giant = bytes
        giant.replaceSubrange(0..<8, with: [0, 0, 0, 0, 4, 0, 0, 0])
        try expectRefused(giant, "does not fit the file")
        // Corrupted JSON.
        try expectRefused(Self.assemble(header: String(header.dropLast(3)) + "#!", data: data), "not a JSON object")
        // Offsets out of range.
        let wp = header.range(of: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [")!
        let rest = header[wp.upperBound...]
        let close = rest.firstIndex(of: "]")!
        let offs = rest[rest.startIndex..<close].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces))! }
        let outOfRange = header.replacingCharacters(in: wp.upperBound..<close, with: "\(offs[0] + 8), \(offs[1] + 8)")
        try expectRefused(Self.assemble(header: outOfRange, data: data), "outside the file")
        // Overlapping tensors: W_potential.bias moved onto the start of the data.
        let overlap = header.replacingCharacters(in: wp.upperBound..<close, with: "0, 4")
        try expectRefused(Self.assemble(header: overlap, data: data), "overlap")
        // A shape that disagrees with the byte count.
        let badShape = header.replacingOccurrences(of: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1]",
                                                   with: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [2]")
        try expectRefused(Self.assemble(header: badShape, data: data), "needs 8 bytes")
        // A shape claiming a gigantic tensor.
        let hugeShape = header.replacingOccurrences(of: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1]",
                                                    with: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1000000, 1000000, 1000]")
        try expectRefused(Self.assemble(header: hugeShape, data: data), "too large")
        // Unsupported dtype.
        try expectRefused(Self.assemble(header: header.replacingOccurrences(of: "\"dtype\": \"F32\", \"shape\": [1]", with: "\"dtype\": \"I64\", \"shape\": [1]"), data: data), "dtype I64")
        // Metadata that disagrees with the tensors.
        try expectRefused(Self.assemble(header: header.replacingOccurrences(of: "\"dim\": \"8\"", with: "\"dim\": \"9\""), data: data),
                          "dim = 9 but the tensors give 8")
        // A dictionary that does not fit the coefficient rows.
        try expectRefused(Self.assemble(header: header.replacingOccurrences(of: "\\\"H1s3\\\": 17", with: "\\\"H1s3\\\": 17, \\\"X\\\": 18"), data: data),
                          "orbital dictionary has 19 entries")
        // A missing tensor.
        try expectRefused(Self.assemble(header: header.replacingOccurrences(of: "W_HK.1.bias", with: "W_HK.1.bias_renamed"), data: data),
                          "W_HK.1.bias")
        // Not a model at all.
        try expectRefused(Data("hello, world, this is text".utf8), "does not fit the file")
    }
}
