import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The first run: the bundled model predicts QM9 molecules of 5–29 atoms and draws benzene's electron density.",
        discussion: """
        Uses the model that ships with qdf-swift (trained on QM9 molecules with at most 14 \
        atoms; docs/model-card.md). Prints its predicted atomization energies beside QM9's \
        values for nine bundled molecules, from 5 atoms to 29 (those above 14 atoms are \
        extrapolation), and writes into the output folder: predictions.tsv, the molecules \
        (molecules.txt, QDF text format), benzene's electron density as a Gaussian cube, \
        ρ along a C–C bond (TSV and PNG) and a slice through the ring (PNG).
        """)

    @Option(name: .shortAndLong, help: "The folder to write into (created if needed).")
    var output = "qdf-demo"

    @Option(name: .long, help: "A model file to use instead of the bundled model.")
    var model: String?

    @Option(help: "Grid spacing of benzene's density cube (Å).")
    var spacing = 0.1

    /// What each bundled molecule is to the bundled model (its QM9under14atoms split).
    static let roles: [String: (name: String, set: String)] = [
        "dsgdb9nsd_000027": ("", "validation set"),
        "dsgdb9nsd_000014": ("ethanol", "test set"),
        "dsgdb9nsd_000214": ("benzene", "training set"),
        "dsgdb9nsd_000234": ("", "test set"),
    ]
    static let benzeneID = "dsgdb9nsd_000214"

    func validate() throws {
        guard spacing >= 0.03, spacing <= 1 else { throw ValidationError("--spacing must be in [0.03, 1] Å") }
    }

    func run() throws {
        try reportingErrors {
            let start = Date()
            let (m, modelPath) = try loadModelAndPath(model)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: output, isDirectory: &isDir), !isDir.boolValue {
                throw QDFError("exists and is not a folder; give another --output", file: output)
            }
            do { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
            catch { throw QDFError("cannot create the output folder (\(error.localizedDescription))", file: output) }
            let out = (output as NSString).standardizingPath

            // 1. Energies of the bundled molecules.
            let source = try BundledResources.path(BundledResources.demoMoleculesFile)
            let molecules = try readMolecules(source)
            try writeAtomically(try String(contentsOfFile: source, encoding: .utf8), to: out + "/molecules.txt")
            let predictions = try Predictor(model: m).predict(molecules)
            let unit = m.metadata["unit"] ?? "eV"
            let trainAtoms = m.metadata["train_atoms"].flatMap(parseAtomRange)
            var rows = [[String]]()
            rows.append(["molecule", "formula", "atoms", "QM9 (\(unit))", "QDF (\(unit))", "error", "for this model"])
            var tsv = ["ID\tFormula\tAtoms\tCorrect\tPredict\tError\tRole"]
            var errorsIn = [Double](), errorsOut = [Double]()
            for (mol, p) in zip(molecules, predictions) {
                let correct = p.correct.first ?? .nan
                let predicted = Double(p.predicted[0])
                let err = predicted - correct
                let known = Self.roles[mol.id]
                let extrapolating = trainAtoms.map { mol.atomCount > $0.upperBound } ?? (mol.atomCount > 14)
                let role = known?.set ?? (extrapolating ? "larger than any training molecule" : "")
                if extrapolating { errorsOut.append(abs(err)) } else { errorsIn.append(abs(err)) }
                let name = known.map { $0.name.isEmpty ? mol.id : "\(mol.id) (\($0.name))" } ?? mol.id
                rows.append([name, mol.formula, String(mol.atomCount), String(format: "%.3f", correct),
                             String(format: "%.3f", predicted), String(format: "%+.3f", err), role])
                tsv.append([mol.id, mol.formula, String(mol.atomCount), "\(correct)", "\(predicted)", "\(err)", role]
                    .joined(separator: "\t"))
            }
            try writeAtomically(tsv.joined(separator: "\n") + "\n", to: out + "/predictions.tsv")
            print("Atomization energies of QM9 molecules, QM9 (DFT, B3LYP/6-31G(2df,p)) against QDF:\n")
            print(formatTable(rows, rightAligned: [2, 3, 4, 5]))
            func mean(_ v: [Double]) -> String { v.isEmpty ? "–" : String(format: "%.3f", v.reduce(0, +) / Double(v.count)) }
            print("\nmean |error|: \(mean(errorsIn)) \(unit) within the training sizes, "
                  + "\(mean(errorsOut)) \(unit) beyond them (extrapolation)\n")
            flushStdout()

            // 2. Benzene's electron density.
            guard let benzene = molecules.first(where: { $0.id == Self.benzeneID }) else {
                throw QDFError("the demo molecules lack benzene (\(Self.benzeneID))", file: source)
            }
            let benzenePath = out + "/benzene.xyz"
            try writeAtomically(xyzText(benzene, comment: "benzene (QM9 \(benzene.id))"), to: benzenePath)
            let (a, b) = try nearestCarbonPair(benzene)
            let density = try Density.parse([
                benzenePath, "--model", modelPath, "--spacing", String(spacing),
                "--cube", out + "/benzene.cube",
                "--profile", "\(a + 1)-\(b + 1)", "--profile-out", out + "/benzene_profile_CC",
                "--slice", "best", "--slice-out", out + "/benzene_slice.png",
            ])
            try density.run()

            print(String(format: "Done in %.1f s. Open:", Date().timeIntervalSince(start)))
            print("  \(out)/predictions.tsv          the table above (any spreadsheet)")
            print("  \(out)/benzene.cube             electron density, Gaussian cube (VMD, Avogadro, Jmol, ASE, VESTA)")
            print("  \(out)/benzene_profile_CC.png   ρ along a C–C bond (and .tsv)")
            print("  \(out)/benzene_slice.png        ρ in the plane of the ring")
            print("Next: qdf predict YOUR.xyz (the bundled model), qdf density YOUR.xyz --cube out.cube, qdf --help")
        }
    }

    /// The first carbon and the carbon nearest to it (a C–C bond in benzene).
    func nearestCarbonPair(_ mol: Molecule) throws -> (Int, Int) {
        let carbons = mol.atomicNumbers.indices.filter { mol.atomicNumbers[$0] == 6 }
        guard let first = carbons.first, carbons.count > 1 else { throw QDFError("\(mol.id) has fewer than two carbons") }
        func d2(_ i: Int, _ j: Int) -> Double {
            let d = mol.positions[i] - mol.positions[j]; return (d * d).sum()
        }
        let other = carbons.dropFirst().min { d2(first, $0) < d2(first, $1) }!
        return (first, other)
    }
}

/// An XYZ file's text for one molecule (Å).
func xyzText(_ mol: Molecule, comment: String) -> String {
    var s = "\(mol.atomCount)\n\(comment)\n"
    for i in 0..<mol.atomCount {
        s += Element.symbol(mol.atomicNumbers[i])
        for k in 0..<3 { s += String(format: " %.10f", mol.positions[i][k]) }
        s += "\n"
    }
    return s
}

/// Left-aligned columns (right-aligned where asked), two spaces apart.
func formatTable(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    let widths = (0..<(rows.map(\.count).max() ?? 0)).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    return rows.map { r in
        r.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return rightAligned.contains(c) ? pad + cell : cell + pad
        }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}
