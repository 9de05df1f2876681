import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports
import CZlib

/// The qm9pack wheel, when present: $QDF_QM9PACK (a .whl, unpacked folder or CSV), else
/// /tmp/qm9pack/qm9pack-*.whl, else data/qm9pack/qm9pack-*.whl in the project (where
/// `qdf dataset fetch` puts it).
enum QM9Pack {
    static let path: String? = {
        if let p = ProcessInfo.processInfo.environment["QDF_QM9PACK"], FileManager.default.fileExists(atPath: p) { return p }
        let project = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        for dir in ["/tmp/qm9pack", project + "/data/qm9pack"] {
            if let w = (try? FileManager.default.contentsOfDirectory(atPath: dir))?
                .filter({ $0.hasPrefix("qm9pack") && $0.hasSuffix(".whl") }).sorted().last { return dir + "/" + w }
        }
        return nil
    }()
    static var available: Bool { path != nil && Shared.available }
    static let skipMessage: Comment = "the qm9pack wheel (QDF_QM9PACK, /tmp/qm9pack/*.whl or data/qm9pack/*.whl; `qdf dataset fetch`) or ../shared is absent: skipped"
}

/// Header and rows 1, 2 and 4 of qm9pack's qm9_part1.csv, verbatim.
let qm9CSV = #"""
XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,Harmonic_Freq_cmi,RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,R2_bohr2,ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,GibbsFreeEnergy_298K_au,Heatcapacity_Cv_cal_mol_K
"dsgdb9nsd_000001.xyz",1,"C","InChI=1S/CH4/h1H4",5,"[4,1,0,0,0]","['C','H','H','H','H']","[[-0.0126981359,1.0858041578,0.0080009958],[0.002150416,-0.0060313176,0.0019761204],[1.0117308433,1.4637511618,0.0002765748],[-0.540815069,1.4475266138,-0.8766437152],[-0.5238136345,1.4379326443,0.9063972942]]","[-0.535689,0.133921,0.133922,0.133923,0.133923]","[1341.307,1341.3284,1341.365,1562.6731,1562.7453,3038.3205,3151.6034,3151.6788,3151.7078]",157.7118,157.70997,157.70699,0.,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,-40.475117,-40.498597,6.469
"dsgdb9nsd_000002.xyz",2,"N","InChI=1S/H3N/h1H3",4,"[3,0,1,0,0]","['N','H','H','H']","[[-0.0404260543,1.0241077531,0.0625637998],[0.0172574639,0.0125452063,-0.0273771593],[0.9157893661,1.3587451948,-0.0287577581],[-0.5202777357,1.3435321258,-0.7755426124]]","[-0.707143,0.235712,0.235712,0.23572]","[1103.8733,1684.1158,1684.3072,3458.7145,3575.2414,3575.3343]",293.60975,293.54111,191.39397,1.6256,9.46,-0.257,0.0829,0.3399,26.1563,0.034358,-56.525887,-56.523026,-56.522082,-56.544961,6.316
"dsgdb9nsd_000004.xyz",4,"C#C","InChI=1S/C2H2/c1-2/h1-2H",4,"[2,2,0,0,0]","['C','C','H','H']","[[0.5995394918,0.,1.],[-0.5995394918,0.,1.],[-1.6616385861,0.,1.],[1.6616385861,0.,1.]]","[-0.207019,-0.207019,0.207019,0.207019]","[549.7648,549.7648,795.2713,795.2713,2078.1131,3455.8096,3557.8599]",0.,35.6100361,35.6100361,0.,16.28,-0.2845,0.0506,0.3351,59.5248,0.026841,-77.308427,-77.305527,-77.304583,-77.327429,8.574
"""#

/// The same three molecules in QM9's original .xyz format (as in dsgdb9nsd.xyz.tar.bz2),
/// with one coordinate written with Mathematica's *^ exponent.
let qm9XYZFiles: [(String, String)] = [
    ("dsgdb9nsd_000001.xyz", qm9MethaneXYZ),
    ("dsgdb9nsd_000002.xyz", """
    4
    gdb 2\t293.60975\t293.54111\t191.39397\t1.6256\t9.46\t-0.257\t0.0829\t0.3399\t26.1563\t0.034358\t-56.525887\t-56.523026\t-56.522082\t-56.544961\t6.316\t
    N\t-0.0404260543\t 1.0241077531\t 0.0625637998\t-0.707143
    H\t 0.0172574639\t 0.0125452063\t-0.0273771593\t 0.235712
    H\t 0.9157893661\t 1.3587451948\t-0.0287577581\t 0.235712
    H\t-0.5202777357\t 1.3435321258\t-0.7755426124\t 0.23572
    1103.8733\t1684.1158\t1684.3072\t3458.7145\t3575.2414\t3575.3343
    N\tN\t
    InChI=1S/H3N/h1H3\tInChI=1S/H3N/h1H3

    """),
    ("dsgdb9nsd_000004.xyz", """
    4
    gdb 4\t0.\t35.6100361\t35.6100361\t0.\t16.28\t-0.2845\t0.0506\t0.3351\t59.5248\t0.026841\t-77.308427\t-77.305527\t-77.304583\t-77.327429\t8.574\t
    C\t 5.995394918*^-1\t 0.\t 1.\t-0.207019
    C\t-0.5995394918\t 0.\t 1.\t-0.207019
    H\t-1.6616385861\t 0.\t 1.\t 0.207019
    H\t 1.6616385861\t 0.\t 1.\t 0.207019
    549.7648\t549.7648\t795.2713\t795.2713\t2078.1131\t3455.8096\t3557.8599
    C#C\tC#C\t
    InChI=1S/C2H2/c1-2/h1-2H\tInChI=1S/C2H2/c1-2/h1-2H

    """),
]

/// A zip archive with stored (uncompressed) entries, as a wheel could hold them.
func storedZip(_ entries: [(String, Data)]) -> Data {
    var out = Data(), central = Data()
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    for (name, data) in entries {
        let crc = Gzip.crc32(data)
        let offset = UInt32(out.count)
        let n = Array(name.utf8)
        out += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc)
        out += u32(UInt32(data.count)) + u32(UInt32(data.count)) + u16(n.count) + u16(0) + n
        out += data
        central += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc)
        central += u32(UInt32(data.count)) + u32(UInt32(data.count)) + u16(n.count) + u16(0) + u16(0) + u16(0) + u16(0)
        central += u32(0) + u32(offset) + n
    }
    let cdOffset = UInt32(out.count)
    out += central
    out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count)
    out += u32(UInt32(central.count)) + u32(cdOffset) + u16(0)
    return out
}

/// Independent computation: (U0 − Σ atomref) × 27.2114 with QM9's atomref values.
func atomizationEV(_ u0: Double, _ symbols: [String]) -> Double {
    let ref: [String: Double] = ["H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730]
    return (u0 - symbols.reduce(0.0) { $0 + ref[$1]! }) * 27.2114
}

func runTool(_ tool: String, _ args: [String], in dir: String) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: dir)
    try p.run(); p.waitUntilExit()
    return p.terminationStatus
}

@Suite("QM9 dataset builder")
struct QM9DatasetTests {
    @Test("qm9pack CSV: ids, elements, coordinate text, atomization energy and HOMO/LUMO in eV")
    func csv() throws {
        let dir = try TemporaryDirectory()
        let records = try QM9Source.read([try dir.write("part.csv", qm9CSV)])
        #expect(records.map(\.id) == ["dsgdb9nsd_000001", "dsgdb9nsd_000002", "dsgdb9nsd_000004"])
        #expect(records[2].coordinateText.prefix(3) == ["0.5995394918", "0.0", "1.0"])
        #expect(records[0].positions == methaneAtoms.map(\.1))
        let expected = [atomizationEV(-40.47893, ["C", "H", "H", "H", "H"]), atomizationEV(-56.525887, ["N", "H", "H", "H"]),
                        atomizationEV(-77.308427, ["C", "C", "H", "H"])]
        for (r, e) in zip(records, expected) {
            let v = try QM9Dataset.properties(r, [.atomization])
            #expect(v.count == 1 && abs(v[0] - e) < 1e-9, "\(r.id): \(v) vs \(e)")
        }
        // The published files' text for methane's energy (QM9under14atoms train.txt).
        #expect(pythonRepr(try QM9Dataset.properties(records[0], [.atomization])[0]) == "-17.17218935239992")
        let hl = try QM9Dataset.properties(records[1], try QM9Property.parseList("homolumo"))
        #expect(abs(hl[0] - -0.257 * 27.2114) < 1e-12 && abs(hl[1] - 0.0829 * 27.2114) < 1e-12)

        var o = QM9BuildOptions()
        o.split = .none
        o.properties = try QM9Property.parseList("homolumo")
        let out = dir.file("out")
        let files = try QM9Dataset.write(try QM9Dataset.split(records, options: o), to: out, options: o)
        #expect(files == [out + "/all.txt"])
        let back = try readMolecules(files[0])
        #expect(back.map(\.id) == records.map(\.id))
        #expect(back[2].positions[0] == [0.5995394918, 0, 1])
        #expect(back[0].properties == [-0.3877 * 27.2114, 0.1171 * 27.2114])
    }

    @Test("the original archive (.tar.bz2, .tar) and a folder of .xyz files give the CSV's molecules",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tar") && FileManager.default.isExecutableFile(atPath: "/usr/bin/bzip2"),
                   "tar or bzip2 is not installed: skipped"))
    func originalArchive() throws {
        let dir = try TemporaryDirectory()
        let fromCSV = try QM9Source.read([try dir.write("part.csv", qm9CSV)])
        try FileManager.default.createDirectory(atPath: dir.file("xyz"), withIntermediateDirectories: true)
        for (name, text) in qm9XYZFiles { try dir.write("xyz/" + name, text) }
        #expect(try runTool("/usr/bin/tar", ["cjf", "../dsgdb9nsd.xyz.tar.bz2"] + qm9XYZFiles.map(\.0), in: dir.file("xyz")) == 0)
        #expect(try runTool("/usr/bin/tar", ["cf", "../dsgdb9nsd.xyz.tar"] + qm9XYZFiles.map(\.0), in: dir.file("xyz")) == 0)
        for source in ["dsgdb9nsd.xyz.tar.bz2", "dsgdb9nsd.xyz.tar", "xyz"] {
            let rs = try QM9Source.read([dir.file(source)]).sorted { $0.index < $1.index }
            #expect(rs.map(\.id) == fromCSV.map(\.id), "\(source)")
            for (a, b) in zip(rs, fromCSV) {
                #expect(a.atomicNumbers == b.atomicNumbers && a.positions == b.positions, "\(source) \(a.id)")
                #expect(a.u0 == b.u0 && a.homo == b.homo && a.lumo == b.lumo, "\(source) \(a.id)")
            }
            #expect(rs[2].coordinateText.prefix(3) == ["5.995394918e-1", "0.0", "1.0"])
        }
        // A truncated archive is an error naming it.
        let full = try Data(contentsOf: URL(fileURLWithPath: dir.file("dsgdb9nsd.xyz.tar.bz2")))
        let cut = dir.file("cut.tar.bz2")
        try full.prefix(full.count - 40).write(to: URL(fileURLWithPath: cut))
        expectQDFError(line: nil, "bzip2") { _ = try QM9Source.read([cut]) }
        // A broken .xyz inside the archive: named with its line.
        try dir.write("xyz/dsgdb9nsd_000002.xyz", qm9XYZFiles[1].1.replacingOccurrences(of: "0.0172574639", with: "x"))
        do {
            _ = try QM9Source.read([dir.file("xyz")])
            Issue.record("no error")
        } catch let e as QDFError {
            #expect(e.file?.hasSuffix("xyz/dsgdb9nsd_000002.xyz") == true && e.line == 4 && e.message.contains("not a finite number"), "\(e)")
        }
    }

    @Test("a wheel (zip): CSVs with coordinates are read, others skipped; a corrupt entry fails its CRC")
    func wheel() throws {
        let dir = try TemporaryDirectory()
        let pol = "XYZ_file,A_xx\n\"dsgdb9nsd_000001.xyz\",13.211\n"
        let zip = storedZip([("qm9pack/__init__.py", Data("x\n".utf8)), ("qm9pack/data/qm9_part1.csv", Data(qm9CSV.utf8)),
                             ("qm9pack/data/qm9_polarizability.csv", Data(pol.utf8))])
        let whl = dir.file("qm9pack-1.0.3-py3-none-any.whl")
        try zip.write(to: URL(fileURLWithPath: whl))
        let rs = try QM9Source.read([whl])
        #expect(rs.map(\.index) == [1, 2, 4])
        #expect(rs[0].origin.hasSuffix("qm9_part1.csv:2"))
        var bad = zip
        let at = bad.range(of: Data("-40.47893".utf8))!.lowerBound
        bad[at + 1] = UInt8(ascii: "5")
        let badPath = dir.file("bad.whl")
        try bad.write(to: URL(fileURLWithPath: badPath))
        expectQDFError(line: nil, "CRC-32") { _ = try QM9Source.read([badPath]) }
        let notZip = try dir.write("fake.whl", "not a zip")
        expectQDFError(line: nil, "not a zip file") { _ = try QM9Source.read([notZip]) }
    }

    @Test("broken CSVs: errors name the file and line; a molecule read twice is reported with both places")
    func brokenCSV() throws {
        let dir = try TemporaryDirectory()
        var lines = qm9CSV.split(separator: "\n").map(String.init)
        let fewer = try dir.write("a.csv", lines.prefix(2).joined(separator: "\n") + "\n" + lines[2].replacingOccurrences(of: ",\"N\",", with: ",") + "\n")
        expectQDFError(line: 3, "expected 25 fields") { _ = try QM9Source.read([fewer]) }
        let coords = try dir.write("b.csv", lines.prefix(3).joined(separator: "\n") + "\n" + lines[3].replacingOccurrences(of: ",1.],[1.6616385861", with: "],[1.6616385861") + "\n")
        expectQDFError(line: 4, "4 elements but 11 coordinates") { _ = try QM9Source.read([coords]) }
        let number = try dir.write("c.csv", lines.prefix(2).joined(separator: "\n").replacingOccurrences(of: "-40.47893", with: "-40.4x") + "\n")
        expectQDFError(line: 2, "InternalEnergy_0K_au is not a number") { _ = try QM9Source.read([number]) }
        let noColumn = try dir.write("d.csv", "XYZ_file,XYZ_Ang\n")
        expectQDFError(line: 1, "lacks columns Elements, InternalEnergy_0K_au, HOMO_au, LUMO_au") { _ = try QM9Source.read([noColumn]) }
        let quote = try dir.write("e.csv", lines[0] + "\n\"dsgdb9nsd_000001.xyz,1\n")
        expectQDFError(line: 2, "unterminated quoted field") { _ = try QM9Source.read([quote]) }
        lines.removeLast()
        let p = try dir.write("f.csv", lines.joined(separator: "\n") + "\n")
        let q = try dir.write("g.csv", lines.prefix(1).joined() + "\n" + lines[2] + "\n")
        let rs = try QM9Source.read([p, q])
        expectQDFError(line: nil, "dsgdb9nsd_000002 appears twice: first at \(p):3") { _ = try QM9Dataset.split(rs, options: QM9BuildOptions()) }
    }

    @Test("splits: seeded 8:1:1 (disjoint, sorted, reproducible), given ids, size filters, exclusions")
    func splits() throws {
        // 1000 synthetic molecules, 3 to 22 atoms.
        var rs = [QM9Record]()
        for i in 1...1000 {
            let n = 3 + i % 20
            rs.append(QM9Record(index: i, atomicNumbers: [Int](repeating: 1, count: n),
                                positions: (0..<n).map { SIMD3(Double($0), 0, 0) }, u0: -Double(n), homo: -0.3, lumo: 0.1, origin: "t:\(i)"))
        }
        var o = QM9BuildOptions()
        o.split = .seeded(7)
        let s = try QM9Dataset.split(rs, options: o)
        #expect(s.parts.map(\.name) == ["train", "val", "test"])
        #expect(s.parts.map { $0.records.count } == [800, 100, 100])
        let ids = s.parts.flatMap { $0.records.map(\.index) }
        #expect(Set(ids).count == 1000)
        for p in s.parts { #expect(p.records.map(\.index) == p.records.map(\.index).sorted()) }
        #expect(try QM9Dataset.split(rs, options: o).parts[1].records.map(\.index) == s.parts[1].records.map(\.index))
        o.split = .seeded(8)
        #expect(try QM9Dataset.split(rs, options: o).parts[1].records.map(\.index) != s.parts[1].records.map(\.index))

        o.maxAtoms = 14
        o.minAtoms = 5
        o.exclude = [qm9ID(3), qm9ID(4), qm9ID(999)]
        let f = try QM9Dataset.split(rs, options: o)
        let kept = rs.filter { $0.atomCount <= 14 && $0.atomCount >= 5 && ![3, 4, 999].contains($0.index) }
        #expect(f.parts.reduce(0) { $0 + $1.records.count } == kept.count)
        #expect(f.excluded == 3 && f.filtered == 1000 - kept.count - 3)  // exclusion is applied first

        o.split = .ids(val: [qm9ID(22), qm9ID(2)], test: [qm9ID(23)])
        let g = try QM9Dataset.split(rs, options: o)
        #expect(g.parts[1].records.map(\.index) == [2, 22])
        #expect(g.parts[2].records.map(\.index) == [23])
        #expect(g.parts[0].records.count == kept.count - 3)
        o.split = .ids(val: [qm9ID(22)], test: [qm9ID(22)])
        expectQDFErrorNoFile("listed for both val and test") { _ = try QM9Dataset.split(rs, options: o) }
        o.split = .ids(val: [qm9ID(19)], test: [])  // 19 % 20 + 3 = 22 atoms
        expectQDFErrorNoFile("it has 22 atoms, outside the size filter") { _ = try QM9Dataset.split(rs, options: o) }
        o.split = .ids(val: [qm9ID(4)], test: [])
        expectQDFErrorNoFile("it is excluded") { _ = try QM9Dataset.split(rs, options: o) }
        o.split = .ids(val: [qm9ID(5000)], test: [])
        expectQDFErrorNoFile("is not in the source") { _ = try QM9Dataset.split(rs, options: o) }
    }

    @Test("id lists: indices and ids, comments, header lines skipped and counted, repeats reported, molecule files")
    func idLists() throws {
        let dir = try TemporaryDirectory()
        let p = try dir.write("uncharacterized.txt", """
         Indices of the molecules which failed the consistency check
           Index   SMILES
        # a comment
             21725  C1=CC=C1
        dsgdb9nsd_000007.xyz
        dsgdb9nsd_000008

        """)
        let (ids, skipped) = try readIDList(p)
        #expect(ids == ["dsgdb9nsd_021725", "dsgdb9nsd_000007", "dsgdb9nsd_000008"])
        #expect(skipped == 2)
        let r = try dir.write("r.txt", "12\n13\ndsgdb9nsd_000012\n")
        expectQDFError(line: 3, "id dsgdb9nsd_000012 repeats (first at line 1)") { _ = try readIDList(r) }
        let q = try dir.write("val.txt", "dsgdb9nsd_000002\nN 0 0 0\nH 0 0 1\n-12.0\n\ndsgdb9nsd_000021\nC 0 0 0\n-5.0\n")
        #expect(try readIDList(q).ids == ["dsgdb9nsd_000002", "dsgdb9nsd_000021"])
    }

    @Test("numbers print as Python's repr of a float")
    func pythonReprFormat() {
        // Expected strings from Python 3: repr(float).
        let cases: [(Double, String)] = [
            (-7.70322e-05, "-7.70322e-05"), (1e16, "1e+16"), (9007199254740993.0, "9007199254740992.0"),
            (1e-05, "1e-05"), (0.0001, "0.0001"), (1.2345678901234568e+17, "1.2345678901234568e+17"),
            (-0.5, "-0.5"), (100.0, "100.0"), (Double.leastNonzeroMagnitude, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"), (-17.17218935239992, "-17.17218935239992"), (123456.789, "123456.789"),
            (1e22, "1e+22"), (2.5e-7, "2.5e-07"), (0.0, "0.0"), (-0.0, "-0.0"),
        ]
        for (v, s) in cases { #expect(pythonRepr(v) == s, "\(v)") }
    }

    @Test("from the qm9pack wheel: published QM9under14atoms split byte for byte; 116,041 molecules with ≥ 15 atoms",
          .enabled(if: QM9Pack.available, QM9Pack.skipMessage))
    func reproducePublished() throws {
        let dir = try TemporaryDirectory()
        let published = Shared.dataset("QM9under14atoms_atomizationenergy_eV")
        let clock = ContinuousClock()
        var records = [QM9Record]()
        let readTime = try clock.measure { records = try QM9Source.read([QM9Pack.path!]) }
        #expect(records.count == 130_831)
        var o = QM9BuildOptions()
        o.maxAtoms = 14
        o.coordinates = .published
        o.split = .ids(val: try readIDList(published + "/val.txt").ids, test: try readIDList(published + "/test.txt").ids)
        let files = try QM9Dataset.write(try QM9Dataset.split(records, options: o), to: dir.file("u14"), options: o)
        for (k, name) in ["train", "val", "test"].enumerated() {
            let mine = try Data(contentsOf: URL(fileURLWithPath: files[k]))
            let theirs = try Data(contentsOf: URL(fileURLWithPath: published + "/\(name).txt"))
            #expect(mine == theirs, "\(name).txt differs from the published file")
        }
        // Molecule for molecule, numerically (ids, coordinates, energies to 1e-9 eV).
        let a = try readMolecules(files[0]), b = try readMolecules(published + "/train.txt")
        #expect(a.count == 11_831 && a.count == b.count)
        var maxDiff = 0.0
        for (x, y) in zip(a, b) {
            #expect(x.id == y.id && x.atomicNumbers == y.atomicNumbers && x.positions == y.positions)
            maxDiff = max(maxDiff, abs(x.properties[0] - y.properties[0]))
        }
        #expect(maxDiff <= 1e-9)

        // ≥ 15 atoms: 116,041 molecules; the shared 2,000-molecule sample is among them, identical.
        var big = QM9BuildOptions()
        big.minAtoms = 15
        big.split = .none
        let s = try QM9Dataset.split(records, options: big)
        #expect(s.parts[0].records.count == 116_041)
        let byID = Dictionary(uniqueKeysWithValues: s.parts[0].records.map { ($0.id, $0) })
        let sample = try readMolecules(Shared.dataset("QM9over15atoms_atomizationenergy_eV/test.txt"))
        #expect(sample.count == 2000)
        for m in sample {
            let r = try #require(byID[m.id])
            #expect(r.positions == m.positions && r.atomicNumbers == m.atomicNumbers)
            #expect(abs(try QM9Dataset.properties(r, [.atomization])[0] - m.properties[0]) <= 1e-9, "\(m.id)")
        }
        print("QM9 read from \(QM9Pack.path!): \(readTime)")
    }
}

func expectQDFErrorNoFile(_ text: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("no error (expected '\(text)')", sourceLocation: sourceLocation)
    } catch let e as QDFError {
        #expect(e.message.contains(text), "unexpected message: \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("not a QDFError: \(error)", sourceLocation: sourceLocation)
    }
}
