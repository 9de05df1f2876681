import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Runs `body`, which must throw a QDFError at `line` of a file whose message contains `text`.
func expectQDFError(line: Int?, _ text: String, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("no error (expected '\(text)')", sourceLocation: sourceLocation)
    } catch let e as QDFError {
        #expect(e.file != nil, "error names no file: \(e)", sourceLocation: sourceLocation)
        if let l = line { #expect(e.line == l, "wrong line in: \(e)", sourceLocation: sourceLocation) }
        #expect(e.message.contains(text), "unexpected message: \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("not a QDFError: \(error)", sourceLocation: sourceLocation)
    }
}

// Methane as in QM9 (dsgdb9nsd_000001), used by several tests.
let methaneAtoms: [(String, SIMD3<Double>)] = [
    ("C", [-0.0126981359, 1.0858041578, 0.0080009958]),
    ("H", [0.002150416, -0.0060313176, 0.0019761204]),
    ("H", [1.0117308433, 1.4637511618, 0.0002765748]),
    ("H", [-0.540815069, 1.4475266138, -0.8766437152]),
    ("H", [-0.5238136345, 1.4379326443, 0.9063972942]),
]

func expectMethane(_ m: Molecule, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(m.atomicNumbers == [6, 1, 1, 1, 1], sourceLocation: sourceLocation)
    guard m.atomCount == 5 else { return }
    for (k, a) in methaneAtoms.enumerated() {
        #expect(m.positions[k] == a.1, "atom \(k + 1)", sourceLocation: sourceLocation)
    }
}

@Suite("Molecule formats")
struct MoleculeFormatTests {
    // MARK: XYZ and extended XYZ

    @Test("multi-frame XYZ: ids from comments, file stem for empty comments; a fifth column is ignored")
    func multiFrameXYZ() throws {
        let dir = try TemporaryDirectory()
        let text = """
        5
        methane
        C -0.0126981359 1.0858041578 0.0080009958
        H 0.002150416 -0.0060313176 0.0019761204
        H 1.0117308433 1.4637511618 0.0002765748 0.13
        H -0.540815069 1.4475266138 -0.8766437152
        H -0.5238136345 1.4379326443 0.9063972942
        3

        O -0.0343604951 0.9775395708 0.0076015923
        H 0.0647664923 0.0205721989 0.0015346341
        H 0.8717903737 1.3007924048 0.0006931336

        """
        let p = try dir.write("two.xyz", text)
        let ms = try readMolecules(p)
        #expect(ms.map(\.id) == ["methane", "two_2"])
        expectMethane(ms[0])
        #expect(ms[1].atomicNumbers == [8, 1, 1])
        #expect(ms[1].positions[2] == [0.8717903737, 1.3007924048, 0.0006931336])
    }

    @Test("extended XYZ: Properties columns, id key, --property values (scalars and quoted vectors)")
    func extendedXYZ() throws {
        let dir = try TemporaryDirectory()
        let text = """
        5
        Properties=Z:I:1:charge:R:1:pos:R:3 energy=-40.47893 gap="0.5048 1.5" pbc="F F F" name=methane
        6 -0.5 -0.0126981359 1.0858041578 0.0080009958
        1 0.1 0.002150416 -0.0060313176 0.0019761204
        1 0.1 1.0117308433 1.4637511618 0.0002765748
        1 0.1 -0.540815069 1.4475266138 -0.8766437152
        1 0.1 -0.5238136345 1.4379326443 0.9063972942
        3
        energy=-76.4 gap="0.3 0.4" id=water
        O -0.0343604951 0.9775395708 0.0076015923
        H 0.0647664923 0.0205721989 0.0015346341
        H 0.8717903737 1.3007924048 0.0006931336
        """
        let p = try dir.write("mols.extxyz", text)
        let ms = try readMolecules(p, properties: ["energy", "gap"])
        #expect(ms.map(\.id) == ["methane", "water"])
        expectMethane(ms[0])
        #expect(ms[0].properties == [-40.47893, 0.5048, 1.5])
        #expect(ms[1].properties == [-76.4, 0.3, 0.4])
        #expect(ms[1].atomicNumbers == [8, 1, 1])
        // Without --property the values are not read.
        #expect(try readMolecules(p)[0].properties.isEmpty)
    }

    @Test("broken XYZ files: errors name the file, line and problem")
    func brokenXYZ() throws {
        let dir = try TemporaryDirectory()
        let good = "3\nenergy=1.0 id=w\nO 0 0 0\nH 0 0 1\nH 0 1 0\n"
        let missingProperty = try dir.write("a.extxyz", good + "3\nid=v\nO 0 0 0\nH 0 0 1\nH 0 1 0\n")
        expectQDFError(line: 7, "has no property 'energy'") { _ = try readMolecules(missingProperty, properties: ["energy"]) }
        let badNumber = try dir.write("b.xyz", "2\nx\nH 0 0 0\nH 0 0 1.0.0\n")
        expectQDFError(line: 4, "coordinate z is not a finite number") { _ = try readMolecules(badNumber) }
        let short = try dir.write("c.xyz", "3\nx\nH 0 0 0\nH 0 0 1\n")
        expectQDFError(line: 4, "file ends after 2 of 3 atoms") { _ = try readMolecules(short) }
        let badElement = try dir.write("d.xyz", "1\nx\nXx 0 0 0\n")
        expectQDFError(line: 3, "unknown element symbol 'Xx'") { _ = try readMolecules(badElement) }
        let badCount = try dir.write("e.xyz", good + "three\n")
        expectQDFError(line: 6, "expected the number of atoms") { _ = try readMolecules(badCount) }
        let unterminated = try dir.write("f.extxyz", "1\nname=\"abc energy=1\nH 0 0 0\n")
        expectQDFError(line: 2, "unterminated quoted value") { _ = try readMolecules(unterminated) }
        let badColumns = try dir.write("g.extxyz", "1\nProperties=species:S:1:pos:R:2\nH 0 0 0\n")
        expectQDFError(line: 2, "pos must have 3 columns") { _ = try readMolecules(badColumns) }
        let repeated = try dir.write("h.xyz", "1\nsame\nH 0 0 0\n1\nsame\nH 0 0 0\n")
        expectQDFError(line: 4, "molecule id 'same' repeats (first at line 1)") { _ = try readMolecules(repeated) }
    }

    @Test("QM9's original .xyz: gdb line properties by name, *^ exponents, Mulliken column, trailing lines")
    func qm9OriginalXYZ() throws {
        let dir = try TemporaryDirectory()
        let p = try dir.write("dsgdb9nsd_000001.xyz", qm9MethaneXYZ)
        let ms = try readMolecules(p, properties: ["U0", "homo", "lumo"])
        #expect(ms.count == 1)
        #expect(ms[0].id == "dsgdb9nsd_000001")
        expectMethane(ms[0])
        #expect(ms[0].properties == [-40.47893, -0.3877, 0.1171])
        let truncated = try dir.write("dsgdb9nsd_000002.xyz",
                                      qm9MethaneXYZ.split(separator: "\n").prefix(8).joined(separator: "\n") + "\n")
        expectQDFError(line: 8, "ends before its SMILES line") { _ = try readMolecules(truncated) }
        expectQDFError(line: 2, "QM9 files have no property 'energy'") { _ = try readMolecules(p, properties: ["energy"]) }
    }

    // MARK: SDF / MOL

    @Test("SDF V2000 (as RDKit writes): names, 3D coordinates, data items as properties; .mol without $$$$")
    func sdf() throws {
        let dir = try TemporaryDirectory()
        let p = try dir.write("mols.sdf", methaneSDF + waterSDF)
        let ms = try readMolecules(p, properties: ["U0"])
        #expect(ms.map(\.id) == ["methane", "water"])
        #expect(ms[0].atomicNumbers == [6, 1, 1, 1, 1])
        #expect(ms[0].positions[1] == [0.0022, -0.0060, 0.0020])
        #expect(ms[0].positions[4] == [-0.5238, 1.4379, 0.9064])
        #expect(ms[0].properties == [-40.47893])
        #expect(ms[1].properties == [-76.404702])
        #expect(ms[1].positions[0] == [-0.0344, 0.9775, 0.0076])
        // A single molfile: no data items, no $$$$, empty name -> file stem.
        let mol = try dir.write("water.mol", "\n" + waterSDF.split(separator: "\n", omittingEmptySubsequences: false)
            .dropFirst().prefix(while: { $0 != "M  END" }).joined(separator: "\n") + "\nM  END\n")
        let w = try readMolecules(mol)
        #expect(w.map(\.id) == ["water"])
        #expect(w[0].atomicNumbers == [8, 1, 1])
    }

    @Test("SDF V3000: atoms, continuation lines, CHG=; V2000 charges from M  CHG and the atom block")
    func sdfV3000AndCharges() throws {
        let dir = try TemporaryDirectory()
        let v3000 = try dir.write("a.sdf", """
            acetate
                 RDKit          3D

              0  0  0  0  0  0  0  0  0  0999 V3000
            M  V30 BEGIN CTAB
            M  V30 COUNTS 4 3 0 0 0
            M  V30 BEGIN ATOM
            M  V30 1 C -0.6297 -0.0369 -0.1123 0
            M  V30 2 C 0.8632 0.0563 0.1509 0
            M  V30 3 O 1.3540 -0.9281 0.7715 0
            M  V30 4 O 1.4227 1.1016 -0.2820 0 -
            M  V30 CHG=-1
            M  V30 END ATOM
            M  V30 BEGIN BOND
            M  V30 1 1 1 2
            M  V30 END BOND
            M  V30 END CTAB
            M  END
            >  <E>
            -1.5

            $$$$

            """)
        let r = try openMoleculeFile(v3000, properties: ["E"])
        let m = try #require(try r.next())
        #expect(m.id == "acetate" && m.atomicNumbers == [6, 6, 8, 8] && m.properties == [-1.5])
        #expect(m.positions[3] == SIMD3(1.4227, 1.1016, -0.2820))
        #expect(m.formalCharges == [0, 0, 0, -1] && m.charge == -1)
        #expect(r.atomLines == [8, 9, 10, 11])
        // V2000: the atom block's charge field (5 = -1) unless M  CHG lines are given.
        let atomBlock = methaneSDF.replacingOccurrences(of: "0.0080 C   0  0", with: "0.0080 C   0  5")
        #expect(try readMolecules(try dir.write("b.sdf", atomBlock))[0].charge == -1)
        let chg = methaneSDF.replacingOccurrences(of: "M  END", with: "M  CHG  2   1   1   2  -1\nM  END")
        let z = try readMolecules(try dir.write("c.sdf", chg))[0]
        #expect(z.formalCharges == [1, -1, 0, 0, 0] && z.charge == 0)
    }

    @Test("broken SDF files: 2D coordinates, V3000, short atom block, bad element, missing data item, repeats")
    func brokenSDF() throws {
        let dir = try TemporaryDirectory()
        let twoD = try dir.write("a.sdf", methaneSDF.replacingOccurrences(of: "3D", with: "2D"))
        expectQDFError(line: 2, "has 2D coordinates") { _ = try readMolecules(twoD) }
        let v3000 = try dir.write("b.sdf", "x\n     RDKit          3D\n\n  0  0  0  0  0  0  0  0  0  0999 V3000\nM  V30 BEGIN CTAB\nM  V30 COUNTS 2 0 0 0 0\nM  V30 BEGIN ATOM\nM  V30 1 C 0 0 0 0\nM  V30 END ATOM\nM  V30 END CTAB\nM  END\n")
        expectQDFError(line: 6, "declares 2 atoms in COUNTS but lists 1") { _ = try readMolecules(v3000) }
        let badElement = try dir.write("c.sdf", methaneSDF.replacingOccurrences(of: "0.0080 C ", with: "0.0080 Qq"))
        expectQDFError(line: 5, "unknown element symbol 'Qq'") { _ = try readMolecules(badElement) }
        let lines = methaneSDF.split(separator: "\n", omittingEmptySubsequences: false)
        let truncated = try dir.write("d.sdf", lines.prefix(7).joined(separator: "\n") + "\n")
        expectQDFError(line: 7, "file ends after 3 of 5 atoms") { _ = try readMolecules(truncated) }
        let p = try dir.write("e.sdf", methaneSDF + waterSDF)
        expectQDFError(line: 1, "record 'methane' has no data item <gap>") { _ = try readMolecules(p, properties: ["gap"]) }
        let notNumber = try dir.write("f.sdf", methaneSDF.replacingOccurrences(of: "-40.47893", with: "n/a"))
        expectQDFError(line: 16, "data item <U0> is not a number") { _ = try readMolecules(notNumber, properties: ["U0"]) }
        let twice = try dir.write("g.sdf", methaneSDF + methaneSDF)
        expectQDFError(line: 19, "molecule id 'methane' repeats (first at line 1)") { _ = try readMolecules(twice) }
        let noEnd = try dir.write("h.sdf", lines.prefix(13).joined(separator: "\n") + "\n$$$$\n")
        expectQDFError(line: 14, "ends without 'M  END'") { _ = try readMolecules(noEnd) }
    }

    // MARK: Compression

    @Test("gzip-compressed XYZ, SDF and QDF text read as the uncompressed files; corrupt gzip is an error")
    func gzip() throws {
        let dir = try TemporaryDirectory()
        let xyz = "5\nmethane\n" + methaneAtoms.map { "\($0.0) \($0.1.x) \($0.1.y) \($0.1.z)" }.joined(separator: "\n") + "\n"
        for (name, text) in [("m.xyz", xyz), ("m.sdf", methaneSDF), ("m.txt", "methane\n" + xyz.split(separator: "\n").dropFirst(2).joined(separator: "\n") + "\n-17.17\n")] {
            let plain = try readMolecules(try dir.write(name, text))
            let gz = dir.file(name + ".gz")
            try Gzip.compress(Data(text.utf8)).write(to: URL(fileURLWithPath: gz))
            let unpacked = try readMolecules(gz)
            #expect(unpacked == plain, "\(name).gz")
            #expect(unpacked.count == 1 && unpacked[0].atomCount == 5)
        }
        // Truncated gzip stream.
        let full = try Gzip.compress(Data(xyz.utf8))
        let cut = dir.file("cut.xyz.gz")
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: cut))
        do {
            _ = try readMolecules(cut)
            Issue.record("a truncated gzip file was read without error")
        } catch let e as QDFError {
            #expect(e.file == cut)
        }
    }
}

let qm9MethaneXYZ = """
5
gdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t
C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689
H\t 0.002150416\t-0.0060313176\t 0.0019761204\t 0.133921
H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922
H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923
H\t-0.5238136345\t 1.4379326443\t 0.9063972942\t 0.133923
1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078
C\tC\t
InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4

"""

let methaneSDF = """
methane
     RDKit          3D

  5  4  0  0  0  0  0  0  0  0999 V2000
   -0.0127    1.0858    0.0080 C   0  0  0  0  0  0  0  0  0  0  0  0
    0.0022   -0.0060    0.0020 H   0  0  0  0  0  0  0  0  0  0  0  0
    1.0117    1.4638    0.0003 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.5408    1.4475   -0.8766 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.5238    1.4379    0.9064 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
M  END
>  <U0>  (1)
-40.47893

$$$$

"""

let waterSDF = """
water
 OpenBabel01012500003D

  3  2  0  0  0  0  0  0  0  0999 V2000
   -0.0344    0.9775    0.0076 O   0  0  0  0  0  0  0  0  0  0  0  0
    0.0648    0.0206    0.0015 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.8718    1.3008    0.0007 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0  0  0  0
  1  3  1  0  0  0  0
M  END
> <U0>
-76.404702

$$$$

"""
