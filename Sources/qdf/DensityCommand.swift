import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct Density: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model's electron density (and orbitals) around a molecule: cube files, bond profiles, slices.",
        discussion: """
        By default the total density is written: the frozen 1s cores of the heavy atoms \
        (Li–Ne, tabulated from B3LYP/6-31G(2df,p) atoms; docs/density.md) plus the model's \
        density scaled by s so that it holds the remaining N_e − N_core electrons over the \
        box. --valence-only gives the model's own density, scaled to N_e over the box (no \
        cores). s is reported. The box is the atoms' bounding \
        box plus --margin bohr on every side, with about --spacing Å between points (PySCF \
        cubegen's rule, so the default grid is the one of the reference DFT cubes). Profiles \
        and slices use the same s. Atoms are numbered from 1.
        """)

    @Option(name: .long, help: "The model file (safetensors). Default: the bundled model (docs/model-card.md).")
    var model: String?

    @Argument(help: "The molecule: any format qdf predict reads (XYZ, extended XYZ, SDF/MOL V2000/V3000, PDB, mol2, QDF text; .gz/.bz2; - for standard input); the first molecule of the file is used.")
    var molecule: String

    @OptionGroup var chemistry: ChemistryOptions

    @OptionGroup var frameOptions: FrameOptions

    @Option(help: "Write ρ (e/bohr³) as a Gaussian cube file here.")
    var cube: String?

    @Flag(help: "The model's own density (normalised to N_e), without the frozen atomic cores; cube, profile and slice alike.")
    var valenceOnly = false

    @Option(help: "Grid spacing (Å).")
    var spacing = 0.1

    @Option(help: "Margin around the atoms (bohr).")
    var margin = 3.0

    @Option(help: "Orbitals (1-based, comma-separated) to write as extra cubes OUT_orbitalJ.cube (needs --cube).")
    var orbitals: String?

    @Option(help: "ρ along the line through atoms A-B (e.g. 1-2), from 1 Å before A to 1 Å beyond B.")
    var profile: String?

    @Option(help: "Profile outputs: P.tsv and P.png (default: <molecule>_profile_A-B).")
    var profileOut: String?

    @Option(help: "A reference profile TSV (s, ρ) to overlay on the profile plot (e.g. DFT).")
    var referenceProfile: String?

    @Option(help: "Profile plot's y axis: linear or log.")
    var profileScale = "linear"

    @Option(help: "A slice through atoms A,B,C (e.g. 1,2,3), or 'best' for the molecule's best plane.")
    var slice: String?

    @Option(help: "Slice output PNG (default: <molecule>_slice.png).")
    var sliceOut: String?

    @Option(help: "Slice colour scale: log or linear.")
    var sliceScale = "log"

    func validate() throws {
        guard spacing > 0.005, spacing <= 2 else { throw ValidationError("--spacing must be in (0.005, 2] Å") }
        guard margin >= 0, margin <= 50 else { throw ValidationError("--margin must be in [0, 50] bohr") }
        guard cube != nil || profile != nil || slice != nil else {
            throw ValidationError("nothing to do: give --cube, --profile and/or --slice")
        }
        if orbitals != nil && cube == nil { throw ValidationError("--orbitals writes cubes: give --cube too") }
        if referenceProfile != nil && profile == nil { throw ValidationError("--reference-profile needs --profile") }
        do {
            if let o = orbitals { _ = try parseIndices(o, separator: ",", what: "--orbitals") }
            if let p = profile, try parseIndices(p, separator: "-", what: "--profile").count != 2 {
                throw ValidationError("--profile takes two atoms A-B, e.g. 1-2")
            }
            if let s = slice, s.lowercased() != "best", try parseIndices(s, separator: ",", what: "--slice").count != 3 {
                throw ValidationError("--slice takes three atoms A,B,C (e.g. 1,2,3) or 'best'")
            }
        } catch let e as QDFError { throw ValidationError(e.message) }
        guard ["linear", "log"].contains(profileScale) else { throw ValidationError("--profile-scale must be log or linear") }
        guard HeatMap.Scale(rawValue: sliceScale) != nil else { throw ValidationError("--slice-scale must be log or linear") }
    }

    func run() throws {
        try reportingErrors {
            let m = frameOptions.apply(to: try loadModel(model))
            // The first molecule, checked (elements the model knows, charge, closed shell, geometry).
            let reader = chemistry.checked(try openMoleculeFile(molecule), check: MoleculeCheck(model: m))
            reader.hints[.unknownElement] = "the density needs a model that learned every element of the molecule (--model)"
            guard let mol = try reader.next() else { throw QDFError("no molecule in the file", file: molecule) }
            if (try? reader.next()) != nil { log("\(molecule): several molecules; using the first, '\(mol.id)'") }
            let field = try DensityField(model: m, molecule: mol)
            let orbitalList = try orbitals.map { try parseIndices($0, separator: ",", what: "--orbitals") } ?? []
            let grid = CubeGrid.around(mol, resolution: spacing * bohrPerAngstrom, margin: margin)
            let content: DensityContent = valenceOnly ? .valenceOnly : .total
            let result = try DensityCube.compute(field, grid: grid, orbitals: orbitalList.map { $0 - 1 }, content: content)
            log(String(format: "%@ (%@, N_e = %d): grid %d×%d×%d = %d points, ρ evaluated in %.3f s (%.3f s CPU)",
                       mol.id, mol.formula, mol.electronCount, grid.counts[0], grid.counts[1], grid.counts[2],
                       grid.pointCount, result.seconds, result.cpuSeconds))
            if let cores = result.cores {
                log(String(format: "total density: frozen 1s cores of %d electrons + the model's density scaled by s = %.6g e/bohr³ per model unit to N_e − N_core = %d over the box (∫ρ_model dV = %.6g); the cube's ∫ρ dV = %.4f (N_e = %d; the grid samples the sharp cores coarsely). --valence-only for the model's own density.",
                           cores.electronCount, result.scale, mol.electronCount - cores.electronCount, result.rawIntegral,
                           result.density.integral, mol.electronCount))
                if !cores.uncoveredElements.isEmpty {
                    log("note: no frozen core tabulated for \(cores.uncoveredElements.joined(separator: ", ")) (Li–Ne only); their cores stay in the model's density")
                }
            } else {
                log(String(format: "valence only (no frozen cores): s = %.6g e/bohr³ per model unit (∫ρ_model dV over the box = %.6g; scaled ∫ρ dV = %.4f = N_e)",
                           result.scale, result.rawIntegral, result.density.integral))
            }
            let stem = (molecule as NSString).lastPathComponent.components(separatedBy: ".").first ?? "molecule"
            if let path = cube {
                try result.density.write(path: path)
                log("wrote \(path)")
                let base = path.hasSuffix(".cube") ? String(path.dropLast(5)) : path
                for o in result.orbitals {
                    let p = "\(base)_orbital\(o.index + 1).cube"
                    try o.cube.write(path: p)
                    log("wrote \(p)")
                }
            }
            if let spec = profile {
                let ab = try parseIndices(spec, separator: "-", what: "--profile")
                guard ab.count == 2 else { throw QDFError("--profile takes two atoms A-B, e.g. 1-2") }
                let (a, b) = (ab[0] - 1, ab[1] - 1)
                let prof = try DensityProfile.model(field, atoms: a, b, scale: result.scale, cores: result.cores)
                let base = outputStem(profileOut, default: "\(stem)_profile_\(ab[0])-\(ab[1])")
                let labels = ("\(Element.symbol(mol.atomicNumbers[a]))\(ab[0])", "\(Element.symbol(mol.atomicNumbers[b]))\(ab[1])")
                try writeAtomically(prof.tsv(comment: "\(mol.id) QDF \(valenceOnly ? "" : "total (frozen cores + QDF) ")density along atom \(ab[0]) -> atom \(ab[1]); s in angstrom from atom \(ab[0]); rho in e/bohr^3 (scale \(String(format: "%.6g", result.scale)))"),
                                    to: base + ".tsv")
                var series: [(name: String, profile: DensityProfile)] = [("QDF", prof)]
                if let ref = referenceProfile { series.append(("reference (\((ref as NSString).lastPathComponent))", try DensityProfile.read(path: ref))) }
                try DensityProfile.plot(series, title: "\(mol.id) \(mol.formula): ρ along \(labels.0)–\(labels.1)",
                                        atomLabels: labels, bondLength: prof.bondLength,
                                        logY: profileScale == "log").write(path: base + ".png")
                log("wrote \(base).tsv and \(base).png")
                for (name, p) in series {
                    let peaks = p.peaks().map { String(format: "s = %.3f Å (ρ = %.4g)", p.s[$0], p.density[$0]) }
                    log("\(name) profile maxima: " + (peaks.isEmpty ? "none" : peaks.joined(separator: ", ")))
                }
            }
            if let spec = slice {
                let plane: DensityPlane
                if spec.lowercased() == "best" { plane = DensityPlane.best(mol) }
                else {
                    let abc = try parseIndices(spec, separator: ",", what: "--slice")
                    guard abc.count == 3 else { throw QDFError("--slice takes three atoms A,B,C or 'best'") }
                    plane = try DensityPlane.through(mol, atoms: abc[0] - 1, abc[1] - 1, abc[2] - 1)
                }
                var map = DensitySlice.heatMap(field, plane: plane, scale: result.scale, cores: result.cores)
                map.scale = HeatMap.Scale(rawValue: sliceScale)!
                map.title = "\(mol.id) \(mol.formula): QDF \(valenceOnly ? "" : "total ")ρ in " + (spec.lowercased() == "best" ? "the best plane" : "the plane of atoms \(spec)")
                let path = sliceOut ?? "\(stem)_slice.png"
                try map.write(path: path)
                let inPlane = map.markers.filter(\.filled).map(\.label)
                log("wrote \(path) (atoms within 0.3 Å of the plane, filled markers: \(inPlane.joined(separator: " ")))")
            }
        }
    }

    private func outputStem(_ given: String?, default d: String) -> String {
        guard var s = given else { return d }
        for ext in [".tsv", ".png"] where s.hasSuffix(ext) { s.removeLast(ext.count) }
        return s
    }
}

/// "1,5,7" or "1-2" → [1, 5, 7] / [1, 2] (positive integers).
func parseIndices(_ s: String, separator: Character, what: String) throws -> [Int] {
    try s.split(separator: separator).map {
        guard let i = Int($0.trimmingCharacters(in: .whitespaces)), i > 0 else {
            throw QDFError("\(what): '\($0)' is not a positive integer (in '\(s)')")
        }
        return i
    }
}
