import Foundation

// Precomputed molecule geometry (distances, basis layout, potential) for a set of
// molecules, kept in memory up to a byte budget and recomputed on demand beyond it.
// Geometry does not depend on learned parameters, so computing it once saves the
// work in every later epoch.

/// `Sendable`: every stored property is immutable after `init`.
final class GeometryStore: Sendable {
    let architecture: ModelArchitecture
    let molecules: [Molecule]
    let withPotential: Bool
    /// Density targets by molecule index (density supervision), attached to the geometries.
    private let densityTargets: [Int: [Float]]
    private let cache: [MoleculeGeometry?]
    let cachedBytes: Int

    /// `densityTargets`: molecule id → q on its field grid (N_f values); throws if one does
    /// not match its molecule's grid.
    init(architecture: ModelArchitecture, molecules: [Molecule], withPotential: Bool, budget: Int,
         densityTargets: [String: [Float]] = [:]) throws {
        self.architecture = architecture
        self.molecules = molecules
        self.withPotential = withPotential
        var targets = [Int: [Float]]()
        if !densityTargets.isEmpty {
            for (i, m) in molecules.enumerated() {
                guard let q = densityTargets[m.id] else { continue }
                guard q.count == architecture.sphere.count * m.atomCount else {
                    throw QDFError("the density target of '\(m.id)' has \(q.count) values, its field grid \(architecture.sphere.count * m.atomCount) points")
                }
                targets[i] = q
            }
        }
        self.densityTargets = targets
        let attached = targets  // a constant for the concurrent closure
        // Estimate each molecule's size to decide how many fit (N_f·M distances + N_f potential).
        let perAtom = architecture.sphere.count
        var fit = 0, bytes = 0
        for m in molecules {
            let b = 4 * (perAtom * m.atomCount * m.atomCount + (withPotential ? perAtom * m.atomCount : 0)) + 256
            if bytes + b > budget { break }
            bytes += b; fit += 1
        }
        // The first `fit` molecules, computed in up to 64 parallel chunks.
        let total = fit
        let computed = try concurrentChunks(total, chunks: min(64, total / 16)) { range in
            try range.map { try GeometryStore.geometry(of: molecules[$0], architecture: architecture,
                                                       withPotential: withPotential, target: attached[$0]) }
        }
        let cache: [MoleculeGeometry?] = computed + [MoleculeGeometry?](repeating: nil, count: molecules.count - total)
        self.cache = cache
        cachedBytes = cache.reduce(0) { $0 + ($1?.byteCount ?? 0) }
    }

    var count: Int { molecules.count }

    func geometries(_ indices: [Int]) throws -> [MoleculeGeometry] {
        try indices.map { i in
            if let g = cache[i] { return g }
            return try GeometryStore.geometry(of: molecules[i], architecture: architecture, withPotential: withPotential,
                                              target: densityTargets[i])
        }
    }

    /// A molecule's geometry with its density target attached, if it has one.
    private static func geometry(of m: Molecule, architecture: ModelArchitecture, withPotential: Bool,
                                 target: [Float]?) throws -> MoleculeGeometry {
        var g = try architecture.geometry(m, withPotential: withPotential)
        if let q = target { g.densityTarget = q }
        return g
    }
}

