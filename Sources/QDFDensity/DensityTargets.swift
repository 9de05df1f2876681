import Foundation
import QuantumDeepField
import QDFFormats

// Density targets for density supervision (docs/model.md §16, docs/density.md).
//
// A DFT density cube of a training molecule becomes the target q on the molecule's QDF
// field grid: the frozen cores (AtomicCore.swift) are subtracted at the cube's own points,
// where they are exact, the remaining valence density is interpolated trilinearly at the
// field points (it is smooth there: the field grid stays ≥ 0.26 Å from every nucleus),
// clamped at 0 and scaled so that Σ_i q_i = N_e, the model's unit (Σ_i ρ_i = N_e).

/// DFT density cubes → per-molecule targets on the QDF field grid.
public enum DensityTargets {
    /// File names tried for a molecule, in order.
    public static func candidates(id: String) -> [String] {
        ["\(id).cube", "\(id).cube.gz", "\(id).cube.bz2"]
    }

    /// Targets for the molecules of `molecules` that have a cube in `directory` (by id,
    /// `candidates(id:)`), on the field grid of `sphere` (offsets in Å). Returns the targets
    /// by id and the number of molecules without a cube. Throws `QDFError` naming the file
    /// when a cube is unreadable or does not hold the molecule (elements, order, positions
    /// within 0.005 Å), or when the folder does not exist.
    public static func load(directory: String, molecules: [Molecule], sphere: [SIMD3<Double>]) throws
        -> (targets: [String: [Float]], missing: Int) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw QDFError("not a folder of density cubes", file: directory)
        }
        let fm = FileManager.default
        var found = [(Molecule, String)]()
        for m in molecules {
            if let name = candidates(id: m.id).first(where: { fm.fileExists(atPath: (directory as NSString).appendingPathComponent($0)) }) {
                found.append((m, (directory as NSString).appendingPathComponent(name)))
            }
        }
        let files = found
        let parts = concurrentChunks(files.count, chunks: min(defaultWorkers, files.count)) { range in
            range.map { i in Result { try target(cube: try CubeFile.read(path: files[i].1), path: files[i].1, molecule: files[i].0, sphere: sphere) } }
        }
        var out = [String: [Float]]()
        for (i, r) in parts.enumerated() { out[found[i].0.id] = try r.get() }
        return (out, molecules.count - found.count)
    }

    /// The target of `molecule` from its DFT cube (e/bohr³): q on the field grid of `sphere`.
    public static func target(cube: CubeFile, path: String, molecule m: Molecule, sphere: [SIMD3<Double>]) throws -> [Float] {
        guard cube.atoms.map(\.atomicNumber) == m.atomicNumbers else {
            throw QDFError("the cube's atoms (\(cube.atoms.map { Element.symbol($0.atomicNumber) }.joined())) are not those of '\(m.id)' (\(m.symbols.joined()))", file: path)
        }
        for (a, (atom, p)) in zip(cube.atoms, m.positions).enumerated() {
            let d = atom.position * angstromPerBohr - p
            guard (d * d).sum() < 0.005 * 0.005 else {
                throw QDFError(String(format: "atom %d of the cube lies %.4f Å from atom %d of '%@': not the same geometry", a + 1, (d * d).sum().squareRoot(), a + 1, m.id), file: path)
            }
        }
        // The valence cube: DFT minus the frozen cores at the cube's points.
        let cores = FrozenCores(m)
        var valence = cube
        if !cores.isEmpty {
            for i in 0..<cube.values.count { valence.values[i] -= Float(cores.density(bohr: cube.grid.point(i))) }
        }
        var q = [Float]()
        q.reserveCapacity(sphere.count * m.atomCount)
        for a in 0..<m.atomCount {
            for s in sphere {
                let r = (s + m.positions[a]) * bohrPerAngstrom
                guard let v = valence.interpolate(r) else {
                    throw QDFError("the cube's box does not cover the field grid of atom \(a + 1) (QDF's grid reaches \(String(format: "%.2f", (sphere.map { ($0 * $0).sum() }.max() ?? 0).squareRoot())) Å from each atom)", file: path)
                }
                q.append(max(v, 0))
            }
        }
        let sum = q.reduce(0.0) { $0 + Double($1) }
        guard sum > 0 else { throw QDFError("the valence density is zero on the whole field grid", file: path) }
        let f = Float(Double(m.electronCount) / sum)
        return q.map { $0 * f }
    }
}
