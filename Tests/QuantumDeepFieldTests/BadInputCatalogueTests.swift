import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// The catalogue of bad inputs (issue 9), run through the `qdf` executable as a user
/// would: each is refused with exit status 1 and a message naming the file, the line and
/// the problem, and leaves no output behind (an existing `-o` file is left untouched).
/// Inputs that are merely untidy (CRLF, BOM, trailing spaces, no final newline) predict
/// exactly what the clean file predicts. docs/robustness.md lists every entry.
@Suite("Bad-input catalogue", .serialized)
struct BadInputCatalogueTests {
    static var available: Bool { InterruptionTests.available }
    static let skip: Comment = "the qdf executable was not built beside the tests"

    /// One refused input: the file's name and contents, extra arguments, and what the
    /// error must say (`line` nil: the error names the file without a line).
    struct Refused: Sendable, CustomTestStringConvertible {
        var what: String
        var name: String
        var text: String
        var line: Int?
        var message: String
        var args: [String] = []
        var testDescription: String { what }
    }

    static let refused: [Refused] = [
        Refused(what: "empty file", name: "empty.txt", text: "", line: nil, message: "no molecules in the file"),
        Refused(what: "blank lines only", name: "blank.txt", text: "\n  \n\t\n", line: nil, message: "no molecules in the file"),
        Refused(what: "empty XYZ file", name: "empty.xyz", text: "", line: nil, message: "no molecules in the file"),
        Refused(what: "missing column", name: "missing.txt", text: "a\nC 0 0 0\nH 0 1\n", line: 3,
                message: "expected 'Element x y z', found 3 fields"),
        Refused(what: "extra column", name: "extra.txt", text: "a\nC 0 0 0\nH 0 1 0 7\n", line: 3,
                message: "expected 'Element x y z', found 5 fields"),
        Refused(what: "non-numeric coordinate", name: "word.txt", text: "a\nC 0 zero 0\n", line: 2,
                message: "coordinate y is not a finite number: 'zero'"),
        Refused(what: "NaN coordinate", name: "nan.txt", text: "a\nC 0 0 0\nH 0 0 nan\n", line: 3,
                message: "coordinate z is not a finite number: 'nan'"),
        Refused(what: "Inf coordinate", name: "inf.txt", text: "a\nC -inf 0 0\n", line: 2,
                message: "coordinate x is not a finite number: '-inf'"),
        Refused(what: "NaN property", name: "nanprop.txt", text: "a\nC 0 0 0\nnan\n", line: 3,
                message: "property value is not a finite number: 'nan'"),
        Refused(what: "Inf property", name: "infprop.txt", text: "a\nC 0 0 0\n1.5 Infinity\n", line: 3,
                message: "property value is not a finite number: 'Infinity'"),
        Refused(what: "non-numeric property", name: "wordprop.txt", text: "a\nC 0 0 0\n-1.5 big\n", line: 3,
                message: "property value is not a finite number: 'big'"),
        Refused(what: "unknown element symbol", name: "unknown.txt", text: "a\nC 0 0 0\nXx 1 0 0\n", line: 3,
                message: "unknown element symbol 'Xx'"),
        Refused(what: "element the model never learned (at the atom's line)", name: "oxygen.txt", text: "a\nC 0 0 0\n\nb\nC 0 0 0\nO 1.2 0 0\n", line: 6,
                message: "molecule 'b': atom 2 (O): the model has no learned orbitals for O"),
        Refused(what: "two atoms at the same position", name: "same.txt", text: "a\nC 0 0 0\n\nb\nC 0 0 0\nH 1 0 0\nH 1 0 0\n",
                line: 4, message: "molecule 'b': atoms 2 and 3 are at the same position"),
        Refused(what: "duplicate ids", name: "dup.txt", text: "a\nC 0 0 0\n\nb\nH 0 0 0\n\na\nC 1 0 0\n", line: 7,
                message: "molecule id 'a' repeats (first at line 1)"),
        Refused(what: "property count changes between molecules", name: "props.txt",
                text: "a\nC 0 0 0\n1\n\nb\nC 0 0 0\n1 2\n", line: 7, message: "molecule 'b' has 2 property values, earlier molecules have 1"),
        Refused(what: "property count differs from the model's outputs", name: "twoprops.txt",
                text: "a\nC 0 0 0\nH 1 0 0\n1 2\n", line: 1, message: "molecule 'a' has 2 property values; the model predicts 1"),
        Refused(what: "atom line where an id line belongs", name: "noblank.txt", text: "a\nC 0 0 0\n1\nb\nC 0 0 0\n", line: 4,
                message: "unexpected line after the property line of molecule 'a'"),
        Refused(what: "XYZ: fewer atoms than announced", name: "short.xyz", text: "3\nm\nC 0 0 0\nH 1 0 0\n", line: 4,
                message: "file ends after 2 of 3 atoms of frame 1"),
        Refused(what: "XYZ: atom count not a number", name: "count.xyz", text: "2x\nm\nC 0 0 0\nH 1 0 0\n", line: 1,
                message: "expected the number of atoms, found '2x'"),
        Refused(what: "XYZ: NaN coordinate", name: "nan.xyz", text: "2\nm\nC 0 0 0\nH NaN 0 0\n", line: 4,
                message: "coordinate x is not a finite number: 'NaN'"),
        Refused(what: "XYZ: unknown element", name: "elem.xyz", text: "1\nm\nQq 0 0 0\n", line: 3,
                message: "unknown element symbol 'Qq'"),
        Refused(what: "extended XYZ: requested property missing", name: "ext.xyz",
                text: "1\nProperties=species:S:1:pos:R:3 energy=-1.0\nC 0 0 0\n1\nProperties=species:S:1:pos:R:3\nH 0 0 0\n",
                line: 5, message: "frame 2 has no property 'energy'", args: ["--property", "energy"]),
        Refused(what: "SDF: file ends inside the atom block", name: "short.sdf",
                text: "x\n\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 C   0\n", line: 5,
                message: "file ends after 1 of 2 atoms of record 'x'"),
    ]

    /// A small model (H and C) saved once per test process.
    static let model: String = {
        let dir = NSTemporaryDirectory() + "qdf-catalogue-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/model.safetensors"
        try! ModelFileTests.smallModel().save(path: path)
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "qdf-catalogue-\(getpid())") }
        return path
    }()

    /// The catalogue is about parsing, so its small molecules (CH2, C2, lone atoms) pass
    /// the chemistry checks (ChemistryCheckTests covers those).
    static func predict(_ args: [String]) throws -> (status: Int32, stderr: String) {
        try InterruptionTests.run(["predict", "--model", model, "--allow-open-shell", "--allow-geometry"] + args)
    }

    @Test("qdf predict refuses the input with file:line and the problem, and writes nothing",
          .enabled(if: available, skip), arguments: refused)
    func predictRefuses(_ e: Refused) throws {
        let dir = try TemporaryDirectory()
        let input = try dir.write(e.name, e.text)
        let location = e.line.map { "\(input):\($0): " } ?? "\(input): "
        // A new output file is not created.
        let r = try Self.predict([input, "-o", dir.file("new.tsv")] + e.args)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains(location + e.message), "expected '\(location)\(e.message)' in: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("new.tsv")))
        // An existing output file is left as it was.
        let before = "ID\tPredict\nearlier\t1.0\n"
        try dir.write("old.tsv", before)
        let r2 = try Self.predict([input, "-o", dir.file("old.tsv")] + e.args)
        #expect(r2.status == 1)
        #expect(try String(contentsOfFile: dir.file("old.tsv"), encoding: .utf8) == before)
        // No temporary file is left in the folder.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp.") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("Missing input file, missing output folder, directory as input", .enabled(if: available, skip))
    func paths() throws {
        let dir = try TemporaryDirectory()
        let good = try dir.write("good.txt", "a\nC 0 0 0\nH 1.1 0 0\n")
        let missing = try Self.predict([dir.file("nope.txt"), "-o", dir.file("out.tsv")])
        #expect(missing.status == 1 && missing.stderr.contains(dir.file("nope.txt") + ": cannot open"), "\(missing.stderr)")
        let noFolder = try Self.predict([good, "-o", dir.file("no/such/out.tsv")])
        #expect(noFolder.status == 1 && noFolder.stderr.contains(dir.file("no/such/out.tsv") + ": the output folder does not exist"),
                "\(noFolder.stderr)")
        try FileManager.default.createDirectory(atPath: dir.file("folder.txt"), withIntermediateDirectories: false)
        let folder = try Self.predict([dir.file("folder.txt"), "-o", dir.file("out.tsv")])
        #expect(folder.status == 1 && folder.stderr.contains(dir.file("folder.txt")), "\(folder.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.tsv")))
    }

    /// Runs `qdf predict` on `text` and returns the TSV it writes.
    static func predictions(_ dir: TemporaryDirectory, _ name: String, _ text: String) throws -> String {
        let input = dir.file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: input))
        let out = dir.file(name + ".tsv")
        let r = try predict([input, "-o", out])
        #expect(r.status == 0, "\(name): \(r.stderr)")
        return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }

    @Test("CRLF, a UTF-8 BOM, trailing spaces and no final newline predict what the clean file predicts",
          .enabled(if: available, skip))
    func untidyButValid() throws {
        let dir = try TemporaryDirectory()
        let clean = "ch\nC 0 0 0\nH 1.09 0 0\nH -0.36 1.03 0\n-12.5\n\nc2\nC 0 0 0\nC 1.2 0 0\n-20.25\n"
        let reference = try Self.predictions(dir, "clean.txt", clean)
        #expect(reference.split(separator: "\n").count == 3, "\(reference)")
        let variants: [(String, String)] = [
            ("crlf.txt", clean.replacingOccurrences(of: "\n", with: "\r\n")),
            ("bom.txt", "\u{FEFF}" + clean),
            ("trailing.txt", clean.replacingOccurrences(of: "\n", with: "  \t\n")),
            ("nofinal.txt", String(clean.dropLast())),
            ("all.txt", "\u{FEFF}" + String(clean.dropLast()).replacingOccurrences(of: "\n", with: " \r\n")),
        ]
        for (name, text) in variants {
            let p = try Self.predictions(dir, name, text)
            #expect(p == reference, "\(name)")
        }
        let xyz = "3\nch\nC 0 0 0\nH 1.09 0 0\nH -0.36 1.03 0\n"
        let xyzReference = try Self.predictions(dir, "clean.xyz", xyz)
        #expect(try Self.predictions(dir, "crlf.xyz", "\u{FEFF}" + xyz.replacingOccurrences(of: "\n", with: " \r\n").dropLast(2)) == xyzReference)
    }

    @Test("A molecule of one atom predicts a finite value", .enabled(if: available, skip))
    func oneAtom() throws {
        let dir = try TemporaryDirectory()
        let tsv = try Self.predictions(dir, "one.txt", "carbon\nC 0 0 0\n\nhydrogen\nH 0 0 0\n")
        let rows = tsv.split(separator: "\n").dropFirst().map { $0.split(separator: "\t") }
        #expect(rows.map { String($0[0]) } == ["carbon", "hydrogen"])
        for r in rows { #expect(Double(r[1])?.isFinite == true, "\(r)") }
        // The one-atom prediction does not depend on where the atom is (to Float rounding).
        let moved = try Self.predictions(dir, "moved.xyz", "1\ncarbon\nC 3.5 -2 7.25\n")
        let a = Double(rows[0][1])!, b = Double(moved.split(separator: "\n")[1].split(separator: "\t")[1])!
        #expect(abs(a - b) <= 1e-4 * max(1, abs(a)), "\(a) vs \(b)")
    }

    /// Model files given to `qdf predict --model`: each is refused, naming the file.
    @Test("Damaged model files are refused by qdf predict, naming the file; nothing is written",
          .enabled(if: available, skip))
    func damagedModels() throws {
        let dir = try TemporaryDirectory()
        let input = try dir.write("in.txt", "a\nC 0 0 0\nH 1.1 0 0\n")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.model))
        let (header, data) = ModelFileTests.split(bytes)
        var giant = bytes
        giant.replaceSubrange(0..<8, with: [0, 0, 0, 0, 4, 0, 0, 0])  // a header of 16 GiB
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "shorter than the 8-byte header length"),
            ("truncated", bytes.prefix(bytes.count - 10), "outside the file"),
            ("giant header", giant, "does not fit the file"),
            ("corrupted header", ModelFileTests.assemble(header: String(header.dropLast(3)) + "#!", data: data), "not a JSON object"),
            ("huge shape", ModelFileTests.assemble(header: header.replacingOccurrences(
                of: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1]",
                with: "\"W_potential.bias\": {\"dtype\": \"F32\", \"shape\": [1000000, 1000000, 1000]"), data: data), "too large"),
            ("a molecule file", Data("a\nC 0 0 0\n".utf8), "not a valid safetensors file"),
        ]
        for (what, d, message) in cases {
            let path = dir.file(what.replacingOccurrences(of: " ", with: "-") + ".safetensors")
            try d.write(to: URL(fileURLWithPath: path))
            let r = try InterruptionTests.run(["predict", "--model", path, input, "-o", dir.file("out.tsv")])
            #expect(r.status == 1, "\(what): \(r.stderr)")
            #expect(r.stderr.contains(path + ": ") && r.stderr.contains(message), "\(what): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("out.tsv")), "\(what)")
        }
        let missing = try InterruptionTests.run(["predict", "--model", dir.file("none.safetensors"), input])
        #expect(missing.status == 1 && missing.stderr.contains(dir.file("none.safetensors")), "\(missing.stderr)")
    }

    // MARK: - Training

    static let trainArgs = InterruptionTests.trainArgs

    @Test("qdf train refuses bad data with file:line before creating the run folder",
          .enabled(if: available, skip))
    func trainRefuses() throws {
        let dir = try TemporaryDirectory()
        let data = try InterruptionTests.dataset(dir)
        let cases: [(split: String, text: String, expected: String)] = [
            ("train", "", "train.txt: no molecules"),
            ("val", "a\nC 0 nan 0\n-1\n", "val.txt:2: coordinate y is not a finite number: 'nan'"),
            ("test", "a\nC 0 0 0\n-1\n\nb\nH 0 0 0\n", "test.txt:6: molecule 'b' has 0 property values, earlier molecules have 1"),
            ("train", "a\nZz 0 0 0\n-1\n", "train.txt:2: unknown element symbol 'Zz'"),
        ]
        for (n, c) in cases.enumerated() {
            let folder = dir.file("data\(n)_energy_eV")
            try FileManager.default.copyItem(atPath: data, toPath: folder)
            try c.text.write(toFile: folder + "/\(c.split).txt", atomically: true, encoding: .utf8)
            let run = dir.file("run\(n)")
            let r = try InterruptionTests.run(["train", folder, "-o", run] + Self.trainArgs)
            #expect(r.status == 1, "\(c.split): \(r.stderr)")
            #expect(r.stderr.contains(folder + "/" + c.expected), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: run), "\(run) was created")
        }
    }

    @Test("A diverging run (--lr 1e6) stops with a message and keeps a loadable checkpoint",
          .enabled(if: available, skip))
    func divergence() throws {
        let dir = try TemporaryDirectory()
        let data = try InterruptionTests.dataset(dir)
        let run = dir.file("run")
        var args = Self.trainArgs
        args[args.firstIndex(of: "--lr")! + 1] = "1e6"
        let r = try InterruptionTests.run(["train", data, "-o", run] + args)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains(run + ": training diverged") && r.stderr.contains("the last good checkpoint"), "\(r.stderr)")
        // The checkpoint on disk is the last good state: complete, finite, resumable.
        let state = try SafetensorsFile.read(path: run + "/state.safetensors")
        for (name, t) in state.tensors { let finite = t.values.allSatisfy { $0.isFinite }; #expect(finite, "\(name)") }
        let left = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.contains(".tmp.") }
        #expect(left.isEmpty, "\(left)")
        // Resuming it diverges again the same way (the state is the one before the bad step).
        let again = try InterruptionTests.run(["train", "--resume", run])
        #expect(again.status == 1 && again.stderr.contains("training diverged"), "\(again.stderr)")
    }

    /// Mounts a tmpfs of `bytes` at `path` (needs root); false when not permitted.
    static func mountTmpfs(_ path: String, bytes: Int) -> Bool {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static func unmount(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = [path]
        try? p.run()
        p.waitUntilExit()
    }

    static var canMount: Bool {
        guard available, getuid() == 0 else { return false }
        let dir = NSTemporaryDirectory() + "qdf-mount-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard mountTmpfs(dir, bytes: 1 << 16) else { return false }
        unmount(dir)
        return true
    }

    @Test("A full disk: a clear error, the previous checkpoint kept, --resume after freeing space matches",
          .enabled(if: canMount, "mounting a tmpfs is not permitted here (needs root): skipped"))
    func fullDisk() throws {
        let dir = try TemporaryDirectory()
        let data = try InterruptionTests.dataset(dir)
        let full = try InterruptionTests.run(["train", data, "-o", dir.file("full")] + Self.trainArgs)
        #expect(full.status == 0, "\(full.stderr)")
        let stateBytes = try FileManager.default.attributesOfItem(atPath: dir.file("full/state.safetensors"))[.size] as! Int

        let mnt = dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        #expect(Self.mountTmpfs(mnt, bytes: 1 << 20))
        defer { Self.unmount(mnt) }
        // Fill the disk, leaving room for the initial checkpoint only.
        var fs = statvfs()
        #expect(statvfs(mnt, &fs) == 0)
        let free = Int(fs.f_bavail) * Int(fs.f_frsize)
        let filler = mnt + "/filler"
        try Data(count: free - stateBytes - 16 * 1024).write(to: URL(fileURLWithPath: filler))
        let run = mnt + "/run"
        let r = try InterruptionTests.run(["train", data, "-o", run] + Self.trainArgs)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains(run + "/") && r.stderr.contains("No space left on device"), "\(r.stderr)")
        // The initial checkpoint is intact; no temporary file is left.
        _ = try SafetensorsFile.read(path: run + "/state.safetensors")
        let left = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.contains(".tmp.") }
        #expect(left.isEmpty, "\(left)")
        // Free the space and resume: the result equals the uninterrupted run.
        try FileManager.default.removeItem(atPath: filler)
        let resumed = try InterruptionTests.run(["train", "--resume", run])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try QDFModel.load(path: dir.file("full/model.safetensors"))
        let b = try QDFModel.load(path: run + "/model.safetensors")
        #expect(a.parameters == b.parameters)
    }
}
