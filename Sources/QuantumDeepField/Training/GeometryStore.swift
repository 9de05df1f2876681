import Foundation

// Precomputed molecule geometry (distances, basis layout, potential) for a set of
// molecules, kept in memory up to a byte budget and recomputed on demand beyond it.
// Geometry does not depend on learned parameters, so computing it once saves the
// work in every later epoch.

final class GeometryStore {
    let model: QDFModel
    let molecules: [Molecule]
    let withPotential: Bool
    private var cache: [MoleculeGeometry?]
    private(set) var cachedBytes = 0

    init(model: QDFModel, molecules: [Molecule], withPotential: Bool, budget: Int) throws {
        self.model = model
        self.molecules = molecules
        self.withPotential = withPotential
        // Estimate each molecule's size to decide how many fit (N_f·M distances + N_f potential).
        let perAtom = model.sphere.count
        var fit = 0, bytes = 0
        for m in molecules {
            let b = 4 * (perAtom * m.atomCount * m.atomCount + (withPotential ? perAtom * m.atomCount : 0)) + 256
            if bytes + b > budget { break }
            bytes += b; fit += 1
        }
        var cache = [MoleculeGeometry?](repeating: nil, count: molecules.count)
        let failure = LockedError()
        let total = fit
        cache.withUnsafeMutableBufferPointer { c in
            let base = UnsafeTransfer(c.baseAddress!)
            let chunks = max(1, min(64, total / 16))
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let fit = total, base = base.value
                var i = chunk * fit / chunks
                let end = (chunk + 1) * fit / chunks
                while i < end {
                    do { (base + i).pointee = try model.geometry(molecules[i], withPotential: withPotential) }
                    catch { failure.set(error) }
                    i += 1
                }
            }
        }
        if let e = failure.error { throw e }
        self.cache = cache
        cachedBytes = cache.reduce(0) { $0 + ($1?.byteCount ?? 0) }
    }

    var count: Int { molecules.count }

    func geometries(_ indices: [Int]) throws -> [MoleculeGeometry] {
        try indices.map { i in
            if let g = cache[i] { return g }
            return try model.geometry(molecules[i], withPotential: withPotential)
        }
    }
}

/// The first error thrown from concurrent work.
final class LockedError: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
