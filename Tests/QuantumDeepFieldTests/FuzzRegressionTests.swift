import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Every parser fuzzed by scripts/fuzz, run over the seed corpora in Fuzz/corpus and over
/// the inputs the fuzzers (or their review) found: each is parsed or refused with a
/// QDFError naming the file, never a crash or a huge allocation.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let corpus: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus").path
    }()

    /// Runs `parse` on every file of Fuzz/corpus/`target`; returns how many it accepted.
    static func replay(_ target: String, _ parse: (String, Data) throws -> Void) throws -> (accepted: Int, files: Int) {
        let dir = corpus + "/" + target
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        var accepted = 0
        for name in names {
            let path = dir + "/" + name
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            do {
                try parse(path, data)
                accepted += 1
            } catch let e as QDFError {
                #expect(e.file != nil, "\(name): \(e)")
            }
        }
        return (accepted, names.count)
    }

    /// The seeds are valid inputs; `regression-*` files are the hostile ones.
    static func seeds(_ target: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: corpus + "/" + target).filter { !$0.hasPrefix("regression-") }.count
    }

    @Test("Molecule readers: QDF text, XYZ, SDF corpora")
    func molecules() throws {
        for target in ["qdftext", "xyz", "sdf"] {
            let r = try Self.replay(target) { path, _ in
                for m in try readMolecules(path) { #expect(m.atomCount > 0 && m.positions.count == m.atomCount) }
            }
            #expect(r.accepted >= (try Self.seeds(target)), "\(target): \(r)")
        }
    }

    @Test("Safetensors corpus")
    func safetensors() throws {
        let r = try Self.replay("safetensors") { path, data in
            let f = try SafetensorsFile.parse(data, path: path)
            let again = try SafetensorsFile.parse(f.serialized())
            #expect(again.tensors.map(\.name) == f.tensors.map(\.name))
        }
        #expect(r.accepted >= (try Self.seeds("safetensors")), "\(r)")
    }

    @Test("Cube corpus")
    func cube() throws {
        let r = try Self.replay("cube") { path, _ in
            let c = try CubeFile.read(path: path)
            #expect(c.values.count == c.grid.pointCount)
        }
        #expect(r.accepted >= (try Self.seeds("cube")), "\(r)")
    }

    @Test("Pickle / torch corpus")
    func pickle() throws {
        var accepted = 0
        let r = try Self.replay("pickle") { path, data in
            let bytes = [UInt8](data)
            if bytes.first == 0x80, (try? TorchImport.parseOrbitalDictionary(bytes, path: path)) != nil { accepted += 1; return }
            _ = try TorchFile.parse(bytes, path: path)
        }
        #expect(r.accepted >= (try Self.seeds("pickle")), "\(r)")
        #expect(accepted >= 2)
    }

    /// Found by the pickle fuzzer: a legacy torch file whose tensor view repeats one storage
    /// element 7.9e9/4 times (stride 0) made the importer allocate 7.9 GB.
    @Test("A torch tensor view repeating its storage into gigabytes is refused")
    func expandedView() throws {
        let path = Self.corpus + "/pickle/regression-expanded-view.pt"
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(throws: QDFError.self) { _ = try TorchFile.parse(bytes, path: path) }
        do { _ = try TorchFile.parse(bytes, path: path) } catch let e as QDFError {
            #expect(e.file == path && e.message.contains("an expanded view may have"), "\(e)")
        }
    }

    /// Found by the XYZ fuzzer: an atom count of 6,640,000,003 made the reader reserve
    /// 53 GB before reading a single atom line; SDF had the same pattern.
    @Test("Huge atom counts in XYZ and SDF files are refused without reserving memory for them")
    func hugeAtomCounts() throws {
        let dir = try TemporaryDirectory()
        let xyz = try dir.write("big.xyz", "6640000003\nwater\nO 0 0 0\nH 1 0 0\n")
        let sdf = try dir.write("big.sdf", "x\n\n\n  +9000000000 0  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 C   0\n")
        for (path, message) in [(xyz, "file ends after 2 of 6640000003 atoms"), (sdf, "file ends after 1 of 9000000000 atoms")] {
            do {
                _ = try readMolecules(path)
                Issue.record("\(path): accepted")
            } catch let e as QDFError {
                #expect(e.file == path && e.message.contains(message), "\(e)")
            }
        }
        let found = Self.corpus + "/xyz/regression-huge-atom-count.xyz"
        #expect(throws: QDFError.self) { _ = try readMolecules(found) }
    }

    /// Found by the pickle fuzzer (as a leak): a list appended to itself through the memo is
    /// a reference cycle that is never freed. Such pickles are refused and the cycle broken.
    @Test("A pickle whose list or dict contains itself is refused")
    func selfContainingPickle() throws {
        // PROTO 2, EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: l = []; l.append(l)
        let list: [UInt8] = [0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]
        // EMPTY_DICT, BINPUT 0, BINUNICODE "k", BINGET 0, SETITEM, STOP: d = {}; d["k"] = d
        let dict: [UInt8] = [0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x6b, 0x68, 0, 0x73, 0x2e]
        for bytes in [list, dict] {
            do {
                _ = try TorchImport.parseOrbitalDictionary(bytes, path: "self.pkl")
                Issue.record("accepted")
            } catch let e as QDFError {
                #expect(e.file == "self.pkl" && e.message.contains("contains itself"), "\(e)")
            }
        }
        // A list shared twice (not a cycle) is fine: ([], memo 0) then (l, l) as a tuple in a dict value.
        let shared: [UInt8] = [0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, 0x6b, 0x5d, 0x71, 0, 0x68, 0, 0x86, 0x73, 0x2e]
        do {
            _ = try TorchImport.parseOrbitalDictionary(shared, path: "shared.pkl")
        } catch let e as QDFError {
            #expect(!e.message.contains("contains itself"), "\(e)")
        }
        let found = Self.corpus + "/pickle/regression-self-containing.pkl"
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: found)))
        #expect(throws: QDFError.self) { _ = try TorchImport.parseOrbitalDictionary(bytes, path: found) }
    }

    /// Cube headers that claim more than the file can hold, found reviewing the cube
    /// fuzzer's target: refused before allocating (they used to trap or allocate gigabytes).
    @Test("Cube headers claiming huge grids or atom counts are refused without allocating")
    func hostileCubes() throws {
        let dir = try TemporaryDirectory()
        let grid = " 2 0.5 0.0 0.0\n 2 0.0 0.5 0.0\n 2 0.0 0.0 0.5\n"
        let cases: [(String, String, String)] = [
            ("atoms", "c\nc\n 9000000000 0 0 0\n" + grid, "atoms cannot fit in a file"),
            ("int-min-atoms", "c\nc\n -9223372036854775808 0 0 0\n" + grid, "atoms cannot fit in a file"),
            ("grid-overflow", "c\nc\n 0 0 0 0\n 3000000000 0.5 0 0\n 3000000000 0 0.5 0\n 3000000000 0 0 0.5\n1\n",
             "cannot fit in a file"),
            ("big-grid", "c\nc\n 0 0 0 0\n 40 0.5 0 0\n 40 0 0.5 0\n 40 0 0 0.5\n1 2 3\n", "file ends after 3 of 64000 values"),
            ("float-overflow", "c\nc\n 0 0 0 0\n" + grid + "1 2 3 4 5 6 7 1e300\n", "value is not a number: '1e300'"),
        ]
        for (name, text, message) in cases {
            let path = try dir.write(name + ".cube", text)
            do {
                _ = try CubeFile.read(path: path)
                Issue.record("\(name): accepted")
            } catch let e as QDFError {
                #expect(e.file == path && e.line != nil, "\(name): \(e)")
                #expect(e.message.contains(message), "\(name): \(e)")
            }
        }
    }
}
