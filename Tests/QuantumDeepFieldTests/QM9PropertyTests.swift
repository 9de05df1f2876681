import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Everything here is computed independently of the code under test: the qm9pack column of
/// each property, its conversion, its unit and kind, and QM9's atomic reference energies
/// (QM9's atomref table, Ramakrishnan et al. 2014), typed in again.
enum QM9Expected {
    static let hartree = 27.2114
    /// name → (qm9pack column, factor, atomref column in `atomref` or nil, unit, extensive).
    static let properties: [(name: String, column: String, factor: Double, ref: Int?, unit: String, extensive: Bool)] = [
        ("mu", "Dipole_debye", 1, nil, "D", false),
        ("alpha", "Polarizability_bohr3", 1, nil, "bohr^3", true),
        ("homo", "HOMO_au", hartree, nil, "eV", false),
        ("lumo", "LUMO_au", hartree, nil, "eV", false),
        ("gap", "HOMO_LUMO_gap_au", hartree, nil, "eV", false),
        ("r2", "R2_bohr2", 1, nil, "bohr^2", true),
        ("zpve", "ZPVE_au", hartree, nil, "eV", true),
        ("U0", "InternalEnergy_0K_au", hartree, nil, "eV", true),
        ("U", "InternalEnergy_298K_au", hartree, nil, "eV", true),
        ("H", "Enthalphy_298K_au", hartree, nil, "eV", true),
        ("G", "GibbsFreeEnergy_298K_au", hartree, nil, "eV", true),
        ("Cv", "Heatcapacity_Cv_cal_mol_K", 1, nil, "cal/(mol K)", true),
        ("A", "RotA_GHz", 1, nil, "GHz", false),
        ("B", "RotB_GHz", 1, nil, "GHz", false),
        ("C", "RotC_GHz", 1, nil, "GHz", false),
        ("U0_atom", "InternalEnergy_0K_au", hartree, 0, "eV", true),
        ("U_atom", "InternalEnergy_298K_au", hartree, 1, "eV", true),
        ("H_atom", "Enthalphy_298K_au", hartree, 2, "eV", true),
        ("G_atom", "GibbsFreeEnergy_298K_au", hartree, 3, "eV", true),
    ]
    /// QM9 atomref (Hartree): U (0 K), U (298.15 K), H (298.15 K), G (298.15 K).
    static let atomref: [String: [Double]] = [
        "H": [-0.500273, -0.498857, -0.497912, -0.510927],
        "C": [-37.846772, -37.845355, -37.844411, -37.861317],
        "N": [-54.583861, -54.582445, -54.581501, -54.598897],
        "O": [-75.064579, -75.063163, -75.062219, -75.079532],
        "F": [-99.718730, -99.717314, -99.716370, -99.733544],
    ]

    /// The expected value of a property from a CSV row (field by column name) and its elements.
    static func value(_ name: String, field: (String) -> String, elements: [String]) -> Double {
        let p = properties.first { $0.name == name }!
        let x = Double(field(p.column))!
        guard let k = p.ref else { return x * p.factor }
        return (x - elements.reduce(0.0) { $0 + atomref[$1]![k] }) * p.factor
    }

    /// Splits a CSV line: fields in double quotes may hold commas.
    static func fields(_ line: Substring) -> [String] {
        var out = [String](), cur = "", quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { out.append(cur); cur = "" } else { cur.append(ch) }
        }
        out.append(cur)
        return out
    }

    /// "['C','H','H']" → ["C", "H", "H"].
    static func elements(_ s: String) -> [String] {
        s.split(whereSeparator: { "[]', ".contains($0) }).map(String.init)
    }

    /// The property line of every molecule in a QDF text file: id → values.
    static func propertyLines(_ path: String) throws -> [String: [Double]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out = [String: [Double]]()
        for block in text.components(separatedBy: "\n\n") {
            let lines = block.split(separator: "\n")
            guard lines.count >= 3 else { continue }
            out[String(lines[0])] = lines.last!.split(separator: " ").map { Double($0)! }
        }
        return out
    }
}

@Suite("QM9 properties")
struct QM9PropertyTests {
    @Test("every property of 10 molecules of the qm9pack wheel equals QM9's value after the stated conversion (CSV read in the test)",
          .enabled(if: QM9Pack.path != nil, "the qm9pack wheel (QDF_QM9PACK, /tmp/qm9pack/*.whl or data/qm9pack/*.whl; `qdf dataset fetch`, or .ci/run) is absent: skipped"))
    func wheelValues() throws {
        let dir = try TemporaryDirectory()
        let wheel = QM9Pack.path!
        // The first CSV of the wheel, unpacked by Python's zipfile (not by the code under test),
        // or found in an unpacked folder.
        var csv = dir.file("qm9_part1.csv")
        if wheel.hasSuffix(".csv") {
            csv = wheel
        } else if wheel.hasSuffix(".whl") {
            let status = try runTool("/usr/bin/env", ["python3", "-c", """
                import sys, zipfile
                z = zipfile.ZipFile(sys.argv[1])
                open(sys.argv[2], "wb").write(z.read("qm9pack/data/qm9_part1.csv"))
                """, wheel, csv], in: dir.path)
            try #require(status == 0, "python3 could not unpack \(wheel)")
        } else {
            csv = try #require(FileManager.default.enumerator(atPath: wheel)?.compactMap { $0 as? String }
                .first { $0.hasSuffix("qm9_part1.csv") }.map { wheel + "/" + $0 }, "no qm9_part1.csv in \(wheel)")
        }
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        let lines = text.split(separator: "\n")
        let header = QM9Expected.fields(lines[0])
        func col(_ n: String) -> Int { header.firstIndex(of: n)! }
        // Ten molecules: nine rows spread over the file and the first with fluorine.
        var rows = [1, 2, 3, 500, 2000, 7777, 15000, 22222, 40000].map { QM9Expected.fields(lines[$0]) }
        let firstF = lines.dropFirst().first { QM9Expected.elements(QM9Expected.fields($0)[col("Elements")]).contains("F") }!
        rows.append(QM9Expected.fields(firstF))
        let ids = rows.map { String($0[col("XYZ_file")].dropLast(4)) }
        #expect(Set(ids).count == 10)

        // The code under test: read the same CSV, build a data set of each property.
        let records = try QM9Source.read([csv])
        var checked = 0
        for p in QM9Expected.properties {
            var o = QM9BuildOptions()
            o.properties = try QM9Property.parseList(p.name)
            o.only = Set(ids)
            o.split = .none
            o.coordinates = .shortest
            let folder = dir.file("qm9_\(p.name)")
            _ = try QM9Dataset.write(try QM9Dataset.split(records, options: o), to: folder, options: o)
            let written = try QM9Expected.propertyLines(folder + "/all.txt")
            #expect(written.count == 10)
            for (id, row) in zip(ids, rows) {
                let expected = QM9Expected.value(p.name, field: { row[col($0)] }, elements: QM9Expected.elements(row[col("Elements")]))
                let got = try #require(written[id]?.first)
                #expect(abs(got - expected) <= 1e-12 * max(1, abs(expected)), "\(p.name) of \(id): \(got) vs \(expected)")
                checked += 1
            }
            let md = try #require(try DatasetMetadata.read(folder: folder))
            #expect(md.properties.map(\.name) == [p.name])
            #expect(md.properties[0].unit == p.unit, "\(p.name)")
            #expect(md.properties[0].kind == (p.extensive ? .extensive : .intensive), "\(p.name)")
        }
        #expect(checked == 19 * 10)
    }

    @Test("all 15 quantities: the qm9pack CSV and QM9's original .xyz files give the same records")
    func csvAndXYZAgree() throws {
        let dir = try TemporaryDirectory()
        let fromCSV = try QM9Source.read([try dir.write("part.csv", qm9CSV)])
        try FileManager.default.createDirectory(atPath: dir.file("xyz"), withIntermediateDirectories: true)
        for (name, text) in qm9XYZFiles { _ = try dir.write("xyz/" + name, text) }
        let fromXYZ = try QM9Source.read([dir.file("xyz")]).sorted { $0.index < $1.index }
        #expect(fromCSV.map(\.id) == fromXYZ.map(\.id))
        for (a, b) in zip(fromCSV, fromXYZ) {
            #expect(a.quantities.allSatisfy { $0 != nil }, "\(a.id): every CSV column read")
            #expect(a.quantities == b.quantities, "\(a.id)")
        }
        // Ammonia (row 2 of the CSV), each property against the CSV text typed in again.
        let lines = qm9CSV.split(separator: "\n")
        let header = QM9Expected.fields(lines[0]), row = QM9Expected.fields(lines[2])
        for p in QM9Expected.properties {
            let expected = QM9Expected.value(p.name, field: { row[header.firstIndex(of: $0)!] }, elements: ["N", "H", "H", "H"])
            let got = try QM9Dataset.value(fromCSV[1], QM9Property(rawValue: p.name)!)
            #expect(abs(got - expected) <= 1e-12 * max(1, abs(expected)), "\(p.name)")
        }
    }

    @Test("property lists: names, aliases, order kept; unknown, repeated and mixed lists refused")
    func propertyLists() throws {
        #expect(try QM9Property.parseList("atomization") == [.U0_atom])
        #expect(try QM9Property.parseList("homolumo") == [.homo, .lumo])
        #expect(try QM9Property.parseList("gap,homo") == [.gap, .homo])
        #expect(Set(QM9Property.allCases.map(\.rawValue)) == Set(QM9Expected.properties.map(\.name)))
        #expect(throws: QDFError.self) { try QM9Property.parseList("dipole") }
        #expect(throws: QDFError.self) { try QM9Property.parseList("homolumo,lumo") }
        #expect(throws: QDFError.self) { try QM9Property.parseList("mu,") }
        // One readout per data set: building mu with U0 is refused and writes nothing.
        let dir = try TemporaryDirectory()
        var o = QM9BuildOptions()
        o.properties = [.mu, .U0]
        o.split = .none
        let records = try QM9Source.read([try dir.write("part.csv", qm9CSV)])
        do {
            _ = try QM9Dataset.write(try QM9Dataset.split(records, options: o), to: dir.file("mixed"), options: o)
            Issue.record("a mix of extensive and intensive properties was written")
        } catch let e as QDFError {
            #expect(e.message.contains("mu") && e.message.contains("U0") && e.message.contains("extensive"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("mixed")))
        // Two values per molecule, in the order asked.
        o.properties = [.gap, .homo]
        _ = try QM9Dataset.write(try QM9Dataset.split(records, options: o), to: dir.file("gh"), options: o)
        let v = try QM9Expected.propertyLines(dir.file("gh/all.txt"))["dsgdb9nsd_000001"]!
        #expect(v == [0.5048 * 27.2114, -0.3877 * 27.2114])
        #expect(try DatasetMetadata.read(folder: dir.file("gh"))!.properties.map(\.name) == ["gap", "homo"])
    }

    @Test("a CSV without a quantity's column: other properties build, that one is refused naming the column")
    func missingColumn() throws {
        let dir = try TemporaryDirectory()
        // Drop the dipole column from the CSV.
        let lines = qm9CSV.split(separator: "\n").map { QM9Expected.fields($0) }
        let k = lines[0].firstIndex(of: "Dipole_debye")!
        let text = lines.map { f in
            f.enumerated().filter { $0.offset != k }.map { i, v in i == 0 || v.contains(",") || v.contains("'") ? "\"\(v)\"" : v }
                .joined(separator: ",")
        }.joined(separator: "\n")
        let records = try QM9Source.read([try dir.write("part.csv", text)])
        #expect(records[0][.mu] == nil && records[0][.gap] == 0.5048)
        #expect(try QM9Dataset.value(records[0], .gap) == 0.5048 * 27.2114)
        do {
            _ = try QM9Dataset.value(records[0], .mu)
            Issue.record("mu without its column")
        } catch let e as QDFError {
            #expect(e.message.contains("Dipole_debye") && e.file?.hasSuffix("part.csv:2") == true)
        }
    }
}
