import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct CompareDensity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare-density",
        abstract: "Compare a density cube with a reference cube (e.g. from DFT).",
        discussion: """
        Compares on the first cube's grid; the reference is resampled trilinearly when the \
        grids differ (points outside its box are left out, and the coverage is reported). \
        Prints ∫|Δρ| dV / N_e (N_e from the first cube's atoms), max |Δρ| and the Pearson \
        correlation. With --profile A-B, both cubes are sampled along the line through atoms \
        A and B of the first cube (1 Å beyond each) and overlaid in --png (and --tsv).
        """)

    @Argument(help: "Our cube (e/bohr³).")
    var ours: String

    @Argument(help: "The reference cube (e/bohr³).")
    var reference: String

    @Option(help: "Profile through atoms A-B (1-based, atoms of the first cube).")
    var profile: String?

    @Option(help: "Overlay plot of the two profiles (PNG).")
    var png: String?

    @Option(help: "The two profiles as TSV (s, ours, reference).")
    var tsv: String?

    @Option(help: "Also compare without the points closer than this to any atom (Å), i.e. without the nuclear cusps.")
    var excludeCore: Double?

    @Option(help: "Profile plot's y axis: linear or log.")
    var profileScale = "log"

    @Option(help: "Also split ∫|Δρ|/N_e and r into the core region (closer than this to a nucleus heavier than He, Å) and the valence region.")
    var coreRadius: Double?

    func validate() throws {
        if (png != nil || tsv != nil) && profile == nil { throw ValidationError("--png/--tsv need --profile A-B") }
        if let r = excludeCore, !(r > 0) { throw ValidationError("--exclude-core must be positive (Å)") }
        if let r = coreRadius, !(r > 0) { throw ValidationError("--core-radius must be positive (Å)") }
        guard ["linear", "log"].contains(profileScale) else { throw ValidationError("--profile-scale must be log or linear") }
    }

    func run() throws {
        try reportingErrors {
            let a = try CubeFile.read(path: ours), b = try CubeFile.read(path: reference)
            let sameAtoms = a.atoms.count == b.atoms.count && zip(a.atoms, b.atoms).allSatisfy {
                $0.atomicNumber == $1.atomicNumber && (($0.position - $1.position) * ($0.position - $1.position)).sum() < 1e-4
            }
            if !sameAtoms { log("warning: the two cubes' atoms differ (elements, order or positions beyond 0.01 bohr)") }
            let c = try DensityComparison.compare(a, reference: b)
            print("points compared\t\(c.points) (\(String(format: "%.1f", 100 * c.coverage))% of \(ours)'s grid; \(c.sameGrid ? "same grid" : "reference resampled trilinearly"))")
            print(String(format: "N_e\t%d", c.electronCount))
            print(String(format: "integral ours / reference\t%.4f / %.4f e", c.integral, c.referenceIntegral))
            print(String(format: "integrated |Δρ| / N_e\t%.4f  (∫|Δρ| dV = %.4f e)", c.relativeDifference, c.integratedAbsoluteDifference))
            let at = c.maxDeviationAt * angstromPerBohr
            print(String(format: "max |Δρ|\t%.4g e/bohr³ at (%.3f, %.3f, %.3f) Å", c.maxDeviation, at.x, at.y, at.z))
            print(String(format: "Pearson r\t%.4f", c.pearson))
            if let r = excludeCore {
                let v = try DensityComparison.compare(a, reference: b, excludingCores: r * bohrPerAngstrom)
                print(String(format: "beyond %.2f Å of every nucleus (%d points, ours %.4f e, reference %.4f e):", r, v.points, v.integral, v.referenceIntegral))
                print(String(format: "  integrated |Δρ| / N_e\t%.4f", v.relativeDifference))
                let at = v.maxDeviationAt * angstromPerBohr
                print(String(format: "  max |Δρ|\t%.4g e/bohr³ at (%.3f, %.3f, %.3f) Å", v.maxDeviation, at.x, at.y, at.z))
                print(String(format: "  Pearson r\t%.4f", v.pearson))
            }
            if let r = coreRadius {
                let (core, valence) = try DensityComparison.regions(a, reference: b, coreRadius: r * bohrPerAngstrom)
                for (name, v) in [("core region (< \(String(format: "%.2f", r)) Å of a heavy nucleus)", core), ("valence region (the rest)", valence)] {
                    print(String(format: "%@: %d points, ours %.4f e, reference %.4f e", name, v.points, v.integral, v.referenceIntegral))
                    print(String(format: "  integrated |Δρ| / N_e\t%.4f", v.relativeDifference))
                    print(String(format: "  Pearson r\t%.4f", v.pearson))
                }
            }
            guard let spec = profile else { return }
            let ab = try parseIndices(spec, separator: "-", what: "--profile")
            guard ab.count == 2 else { throw QDFError("--profile takes two atoms A-B, e.g. 1-2") }
            let pa = try DensityProfile.sample(a, atoms: ab[0] - 1, ab[1] - 1)
            // Sample the reference at the same points (our atoms' line).
            let pts = DensityProfile.points(from: a.atoms[ab[0] - 1].position * angstromPerBohr,
                                            to: a.atoms[ab[1] - 1].position * angstromPerBohr, beyond: 1, count: pa.s.count).points
            let pb = DensityProfile(s: pa.s, density: pts.map { b.interpolate($0 * bohrPerAngstrom).map(Double.init) ?? .nan },
                                    bondLength: pa.bondLength)
            for (name, p) in [("ours", pa), ("reference", pb)] {
                let peaks = p.peaks().map { String(format: "%.3f", p.s[$0]) }
                print("\(name) profile maxima at s (Å)\t" + (peaks.isEmpty ? "none" : peaks.joined(separator: ", ")))
            }
            let la = "\(Element.symbol(a.atoms[ab[0] - 1].atomicNumber))\(ab[0])", lb = "\(Element.symbol(a.atoms[ab[1] - 1].atomicNumber))\(ab[1])"
            if let path = png {
                try DensityProfile.plot([("ours: " + (ours as NSString).lastPathComponent, pa),
                                         ("reference: " + (reference as NSString).lastPathComponent, pb)],
                                        title: "ρ along \(la)–\(lb)", atomLabels: (la, lb), bondLength: pa.bondLength,
                                        logY: profileScale == "log").write(path: path)
                log("wrote \(path)")
            }
            if let path = tsv {
                var text = "# density along atom \(ab[0]) -> atom \(ab[1]) of \(ours); s in angstrom; rho in e/bohr^3\ns_angstrom\tours\treference\n"
                for i in 0..<pa.s.count { text += String(format: "%.4f\t%.6e\t%.6e\n", pa.s[i], pa.density[i], pb.density[i]) }
                try writeAtomically(text, to: path)
                log("wrote \(path)")
            }
        }
    }
}
