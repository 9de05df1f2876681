import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

// torch.save files and pickles built byte by byte here, independently of the reader.

/// Emits pickle opcodes, protocol 2.
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 2]
    mutating func op(_ b: UInt8) { bytes.append(b) }
    mutating func string(_ s: String) {
        op(0x58)  // BINUNICODE
        let u = Array(s.utf8)
        append32(u.count)
        bytes += u
    }
    mutating func int(_ i: Int) { op(0x4a); append32(i) }  // BININT
    mutating func global(_ module: String, _ name: String) { op(0x63); bytes += Array("\(module)\n\(name)\n".utf8) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func emptyTuple() { op(0x29) }
    mutating func reduce() { op(0x52) }
    mutating func stop() { op(0x2e) }
    mutating func append32(_ n: Int) { for k in 0..<4 { bytes.append(UInt8((n >> (8 * k)) & 0xff)) } }
    /// OrderedDict()
    mutating func orderedDict() { global("collections", "OrderedDict"); emptyTuple(); reduce() }
}

/// One tensor of a state_dict built in a test: a strided view of a storage.
struct TestTensor {
    var name: String
    var storageType = "FloatStorage"
    var key: String
    var storage: [Float]
    var offset = 0
    var shape: [Int]
    var strides: [Int]
    /// Legacy format only: the tensor's storage is a view (key, first element, count) of `storage`.
    var view: (key: String, offset: Int, count: Int)? = nil
}

/// The state_dict pickle, with legacy (6-element) or zip (5-element) persistent ids.
func stateDictPickle(_ tensors: [TestTensor], legacy: Bool) -> [UInt8] {
    var p = PickleWriter()
    p.orderedDict()
    p.mark()
    for t in tensors {
        p.string(t.name)
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.mark()
        p.mark(); p.string("storage"); p.global("torch", t.storageType); p.string(t.key); p.string("cpu")
        p.int(t.storage.count)
        if legacy {
            if let v = t.view {
                p.mark(); p.string(v.key); p.int(v.offset); p.int(v.count); p.tuple()
            } else {
                p.op(0x4e)  // NONE: no view
            }
        }
        p.tuple()
        p.op(0x51)  // BINPERSID
        p.int(t.offset)
        p.mark(); for s in t.shape { p.int(s) }; p.tuple()
        p.mark(); for s in t.strides { p.int(s) }; p.tuple()
        p.op(0x89)  // NEWFALSE
        p.orderedDict()
        p.tuple()
        p.reduce()
    }
    p.op(0x75)  // SETITEMS
    p.stop()
    return p.bytes
}

func storageBytes(_ t: TestTensor) -> [UInt8] {
    let size = t.storageType == "FloatStorage" ? 4 : 8
    var out = [UInt8]()
    for v in t.storage {
        if size == 4 {
            let b = v.bitPattern
            for k in 0..<4 { out.append(UInt8((b >> (8 * UInt32(k))) & 0xff)) }
        } else {
            let b = UInt64(Int64(v))
            for k in 0..<8 { out.append(UInt8((b >> (8 * UInt64(k))) & 0xff)) }
        }
    }
    return out
}

/// Unique storages of the tensors, in first-use order.
func uniqueStorages(_ tensors: [TestTensor]) -> [TestTensor] {
    var seen = Set<String>()
    return tensors.filter { seen.insert($0.key).inserted }
}

/// A legacy torch.save file.
func legacyTorchFile(_ tensors: [TestTensor]) -> [UInt8] {
    var out: [UInt8] = [0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]  // magic
    out += [0x80, 2, 0x4d, 0xe9, 0x03, 0x2e]  // 1001
    var info = PickleWriter()
    info.op(0x7d); info.mark(); info.string("protocol_version"); info.int(1001)
    info.string("little_endian"); info.op(0x88); info.op(0x75); info.stop()
    out += info.bytes
    out += stateDictPickle(tensors, legacy: true)
    let storages = uniqueStorages(tensors)
    var keys = PickleWriter()
    keys.op(0x5d); keys.mark(); for s in storages { keys.string(s.key) }; keys.op(0x65); keys.stop()
    out += keys.bytes
    for s in storages {
        for k in 0..<8 { out.append(UInt8((UInt64(s.storage.count) >> (8 * UInt64(k))) & 0xff)) }
        out += storageBytes(s)
    }
    return out
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xffff_ffff
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xedb8_8320 : c >> 1 }
    }
    return ~c
}

/// A zip archive of stored (uncompressed) entries, as torch.save writes them.
func storedZip(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
    var out = [UInt8](), central = [UInt8]()
    func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    func u32(_ v: Int, _ a: inout [UInt8]) { u16(v & 0xffff, &a); u16(v >> 16, &a) }
    for e in entries {
        let name = Array(e.name.utf8), crc = Int(crc32(e.data)), offset = out.count
        u32(0x0403_4b50, &out); u16(20, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0, &out)
        u32(crc, &out); u32(e.data.count, &out); u32(e.data.count, &out); u16(name.count, &out); u16(0, &out)
        out += name + e.data
        u32(0x0201_4b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(0, &central)
        u16(0, &central); u16(0, &central); u32(crc, &central); u32(e.data.count, &central); u32(e.data.count, &central)
        u16(name.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central)
        u32(0, &central); u32(offset, &central)
        central += name
    }
    let cdOffset = out.count
    out += central
    u32(0x0605_4b50, &out); u16(0, &out); u16(0, &out); u16(entries.count, &out); u16(entries.count, &out)
    u32(central.count, &out); u32(cdOffset, &out); u16(0, &out)
    return out
}

func zipTorchFile(_ tensors: [TestTensor], includePickle: Bool = true) -> [UInt8] {
    var entries: [(name: String, data: [UInt8])] = []
    if includePickle { entries.append(("archive/data.pkl", stateDictPickle(tensors, legacy: false))) }
    entries.append(("archive/byteorder", Array("little".utf8)))
    for s in uniqueStorages(tensors) { entries.append(("archive/data/\(s.key)", storageBytes(s))) }
    entries.append(("archive/version", Array("3\n".utf8)))
    return storedZip(entries)
}

/// The message of the QDFError `body` throws (a failed expectation if it throws none).
func errorMessage(_ body: () throws -> Void) -> String {
    do {
        try body()
    } catch let e as QDFError {
        return e.description
    } catch {
        Issue.record("not a QDFError: \(error)")
        return ""
    }
    Issue.record("no error was thrown")
    return ""
}

@Suite("Torch import")
struct TorchImportTests {
    static let legacy = "reference/qdf_QM9under14atoms_pretrained.torch-legacy.pt"
    static let zip = "reference/qdf_QM9under14atoms_pretrained.torch-zip.pt"
    static let pickle = "reference/orbitaldict_6-31G.pickle"

    @Test("Both torch.save formats give tensors bit-identical to the reference safetensors",
          .enabled(if: Shared.available, Shared.skipMessage), arguments: [legacy, zip])
    func bitIdentical(file: String) throws {
        let reference = try SafetensorsFile.read(path: Shared.referenceModel)
        let imported = try TorchImport.model(torchFile: Shared.path(file), orbitalDictionary: Shared.path(Self.pickle))
        let dir = try TemporaryDirectory()
        try imported.save(path: dir.file("imported.safetensors"))
        let saved = try SafetensorsFile.read(path: dir.file("imported.safetensors"))
        #expect(saved.tensors.map(\.name) == reference.tensors.map(\.name))
        for (name, ref) in reference.tensors {
            let t = try #require(saved[name], "missing \(name)")
            #expect(t.shape == ref.shape, "\(name)")
            #expect(t.values.map(\.bitPattern) == ref.values.map(\.bitPattern), "\(name) differs")
        }
        // The dictionary: the same mapping as the reference model's JSON.
        let refDict = try OrbitalDictionary(json: reference.metadata["orbital_dict"]!)
        #expect(imported.dictionary == refDict)
        #expect(refDict.count == 60)
        for key in ["basis_set", "radius", "grid_interval", "operation", "dim", "layer_functional", "hidden_HK", "layer_HK"] {
            #expect(saved.metadata[key] == reference.metadata[key], "metadata \(key)")
        }
    }

    @Test("Both formats predict exactly what the reference model predicts",
          .enabled(if: Shared.available, Shared.skipMessage), arguments: [legacy, zip])
    func identicalPredictions(file: String) throws {
        let molecules = try readMolecules(Shared.dataset("QM9under7atoms_atomizationenergy_eV/test.txt"))
        #expect(molecules.count >= 4)
        let reference = try Predictor(model: QDFModel.load(path: Shared.referenceModel)).predict(molecules)
        let dir = try TemporaryDirectory()
        try TorchImport.model(torchFile: Shared.path(file), orbitalDictionary: Shared.path(Self.pickle))
            .save(path: dir.file("m.safetensors"))
        let imported = try Predictor(model: QDFModel.load(path: dir.file("m.safetensors"))).predict(molecules)
        #expect(imported.map(\.id) == reference.map(\.id))
        #expect(imported.map { $0.predicted.map(\.bitPattern) } == reference.map { $0.predicted.map(\.bitPattern) })
        // Not a vacuous comparison: the predictions are atomization energies near the true ones.
        for p in imported { #expect(abs(Double(p.predicted[0]) - p.correct[0]) < 1.0, "\(p.id)") }
    }

    @Test("Storage offsets, strides and shared storages are honoured, in both formats")
    func stridedViews() throws {
        let storage: [Float] = [-1, 10, 11, 12, 13, 14, 15, 99]
        let tensors = [
            // A 2×3 transposed view starting at element 1: t[i][j] = storage[1 + i + 2j].
            TestTensor(name: "a", key: "0", storage: storage, offset: 1, shape: [2, 3], strides: [1, 2]),
            // Row-major 3 elements from element 5 of the same storage.
            TestTensor(name: "b", key: "0", storage: storage, offset: 5, shape: [3], strides: [1]),
            // A broadcast (stride 0) column.
            TestTensor(name: "c", key: "1", storage: [7.5, 8.5], offset: 1, shape: [3, 1], strides: [0, 1]),
        ]
        for bytes in [legacyTorchFile(tensors), zipTorchFile(tensors)] {
            let sd = try TorchFile.parse(bytes)
            #expect(sd.tensors.map(\.name) == ["a", "b", "c"])
            #expect(sd.tensors[0].tensor == Tensor(shape: [2, 3], values: [10, 12, 14, 11, 13, 15]))
            #expect(sd.tensors[1].tensor == Tensor(shape: [3], values: [14, 15, 99]))
            #expect(sd.tensors[2].tensor == Tensor(shape: [3, 1], values: [8.5, 8.5, 8.5]))
        }
        #expect(try TorchFile.parse(legacyTorchFile(tensors)).format == .legacy)
        #expect(try TorchFile.parse(zipTorchFile(tensors)).format == .zip)
        // Legacy storage views: a tensor on elements 2..<6 of storage "0".
        let views = [
            TestTensor(name: "v", key: "0", storage: storage, offset: 1, shape: [2], strides: [1], view: ("v0", 2, 4)),
        ]
        #expect(try TorchFile.parse(legacyTorchFile(views)).tensors[0].tensor == Tensor(shape: [2], values: [12, 13]))
        let pastView = [
            TestTensor(name: "v", key: "0", storage: storage, offset: 1, shape: [4], strides: [1], view: ("v0", 2, 4)),
        ]
        let mv = errorMessage { _ = try TorchFile.parse(legacyTorchFile(pastView)) }
        #expect(mv.contains("tensor 'v'") && mv.contains("storage of 4"), "\(mv)")
        // A view reaching past its storage is refused.
        let outside = [TestTensor(name: "w", key: "0", storage: [1, 2, 3], offset: 1, shape: [3], strides: [1])]
        let m = errorMessage { _ = try TorchFile.parse(legacyTorchFile(outside)) }
        #expect(m.contains("tensor 'w'") && m.contains("storage of 3"), "\(m)")
    }

    @Test("Truncated files are refused with a clear message", .enabled(if: Shared.available, Shared.skipMessage))
    func truncated() throws {
        let legacy = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.path(Self.legacy))))
        for cut in [3, 10, 100, 2000, 2700, legacy.count / 2, legacy.count - 1] {
            let m = errorMessage { _ = try TorchFile.parse(Array(legacy[..<cut]), path: "cut.pt") }
            #expect(m.hasPrefix("cut.pt: ") && m.contains("truncated"), "cut at \(cut): \(m)")
        }
        let zip = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.path(Self.zip))))
        for cut in [100, zip.count / 2, zip.count - 1] {
            let m = errorMessage { _ = try TorchFile.parse(Array(zip[..<cut]), path: "cut.pt") }
            #expect(m.contains("truncated"), "cut at \(cut): \(m)")
        }
        // A damaged byte inside a stored storage fails its CRC.
        var damaged = zip
        damaged[zip.count / 2] ^= 0x01
        let m = errorMessage { _ = try TorchFile.parse(damaged, path: "damaged.pt") }
        #expect(m.contains("CRC-32"), "\(m)")
    }

    @Test("A wrong magic number is refused", .enabled(if: Shared.available, Shared.skipMessage))
    func wrongMagic() throws {
        var legacy = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.path(Self.legacy))))
        #expect(legacy[4] == 0x6c)
        legacy[4] = 0x6d
        let m = errorMessage { _ = try TorchFile.parse(legacy, path: "x.pt") }
        #expect(m.contains("wrong magic number"), "\(m)")
        // Not a pickle at all (e.g. a safetensors file given by mistake).
        let st = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Shared.referenceModel)))
        let m2 = errorMessage { _ = try TorchFile.parse(st, path: "x.pt") }
        #expect(m2.contains("not a torch.save file"), "\(m2)")
    }

    @Test("Non-float32 storages are refused, naming the tensor and its type")
    func nonFloatStorage() throws {
        let tensors = [
            TestTensor(name: "ok", key: "0", storage: [1, 2], shape: [2], strides: [1]),
            TestTensor(name: "steps", storageType: "LongStorage", key: "1", storage: [3, 4], shape: [2], strides: [1]),
        ]
        for bytes in [legacyTorchFile(tensors), zipTorchFile(tensors)] {
            let m = errorMessage { _ = try TorchFile.parse(bytes) }
            #expect(m.contains("'steps'") && m.contains("torch.LongStorage") && m.contains("int64"), "\(m)")
        }
    }

    @Test("Foreign pickle globals are refused by name, never executed")
    func foreignGlobal() throws {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ("touch ...",)).
        let dir = try TemporaryDirectory()
        let marker = dir.file("executed")
        var p = PickleWriter()
        p.global("os", "system"); p.mark(); p.string("touch \(marker)"); p.tuple(); p.reduce(); p.stop()
        let m = errorMessage { _ = try TorchImport.parseOrbitalDictionary(p.bytes, path: "evil.pickle") }
        #expect(m.contains("evil.pickle") && m.contains("'os.system'"), "\(m)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        // The same inside a state_dict, via STACK_GLOBAL (protocol 4).
        var q = PickleWriter()
        q.orderedDict(); q.mark(); q.string("x")
        q.op(0x8c); q.op(8); q.bytes += Array("builtins".utf8)  // SHORT_BINUNICODE
        q.op(0x8c); q.op(4); q.bytes += Array("eval".utf8)
        q.op(0x93); q.mark(); q.string("1"); q.tuple(); q.reduce(); q.op(0x75); q.stop()
        let zip = storedZip([("archive/data.pkl", q.bytes)])
        let m2 = errorMessage { _ = try TorchFile.parse(zip, path: "evil.pt") }
        #expect(m2.contains("'builtins.eval'"), "\(m2)")
        // An unsupported opcode is named too.
        let m3 = errorMessage { _ = try TorchImport.parseOrbitalDictionary([0x80, 2, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0x2e]) }
        #expect(m3.contains("unsupported opcode 0x47"), "\(m3)")
    }

    @Test("A zip archive without data.pkl is refused")
    func zipWithoutPickle() throws {
        let tensors = [TestTensor(name: "a", key: "0", storage: [1, 2], shape: [2], strides: [1])]
        #expect(try TorchFile.parse(zipTorchFile(tensors)).tensors.count == 1)
        let m = errorMessage { _ = try TorchFile.parse(zipTorchFile(tensors, includePickle: false), path: "np.pt") }
        #expect(m.contains("np.pt") && m.contains("without data.pkl"), "\(m)")
        // A storage entry missing from the archive.
        var entries: [(name: String, data: [UInt8])] = [("archive/data.pkl", stateDictPickle(tensors, legacy: false))]
        let m2 = errorMessage { _ = try TorchFile.parse(storedZip(entries)) }
        #expect(m2.contains("archive/data/0"), "\(m2)")
        entries.append(("archive/data/0", [1, 2, 3]))
        let m3 = errorMessage { _ = try TorchFile.parse(storedZip(entries)) }
        #expect(m3.contains("3 bytes") && m3.contains("needs 8"), "\(m3)")
    }

    @Test("Orbital dictionary pickles: the reference one, and malformed ones",
          .enabled(if: Shared.available, Shared.skipMessage))
    func orbitalDictionaries() throws {
        let d = try TorchImport.readOrbitalDictionary(path: Shared.path(Self.pickle))
        let json = try String(contentsOfFile: Shared.path("reference/orbital_dict_6-31G.json"), encoding: .utf8)
        #expect(d == (try OrbitalDictionary(json: json)))
        #expect(d["H1s0"] == 14 && d["F2p3"] == 59)
        // str → str is not an orbital dictionary.
        var p = PickleWriter()
        p.op(0x7d); p.mark(); p.string("C1s0"); p.string("zero"); p.op(0x75); p.stop()
        let m = errorMessage { _ = try TorchImport.parseOrbitalDictionary(p.bytes, path: "d.pickle") }
        #expect(m.contains("d.pickle") && m.contains("str to int"), "\(m)")
        // A dictionary that does not fit the model is refused by name.
        var small = PickleWriter()
        small.op(0x7d); small.mark(); small.string("H1s0"); small.int(0); small.op(0x75); small.stop()
        let dir = try TemporaryDirectory()
        let path = dir.file("small.pickle")
        try Data(small.bytes).write(to: URL(fileURLWithPath: path))
        let m2 = errorMessage { _ = try TorchImport.model(torchFile: Shared.path(Self.zip), orbitalDictionary: path) }
        #expect(m2.contains("60 rows") && m2.contains("1 entries"), "\(m2)")
    }
}
