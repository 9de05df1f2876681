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
    private let cache: [MoleculeGeometry?]
    let cachedBytes: Int

    init(architecture: ModelArchitecture, molecules: [Molecule], withPotential: Bool, budget: Int) throws {
        self.architecture = architecture
        self.molecules = molecules
        self.withPotential = withPotential
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
        let chunks = max(1, min(64, total / 16))
        let parts = try concurrentMap(chunks) { chunk in
            try ((chunk * total / chunks)..<((chunk + 1) * total / chunks)).map {
                try architecture.geometry(molecules[$0], withPotential: withPotential)
            }
        }
        let cache: [MoleculeGeometry?] = parts.flatMap { $0 } + [MoleculeGeometry?](repeating: nil, count: molecules.count - total)
        self.cache = cache
        cachedBytes = cache.reduce(0) { $0 + ($1?.byteCount ?? 0) }
    }

    var count: Int { molecules.count }

    func geometries(_ indices: [Int]) throws -> [MoleculeGeometry] {
        try indices.map { i in
            if let g = cache[i] { return g }
            return try architecture.geometry(molecules[i], withPotential: withPotential)
        }
    }
}

