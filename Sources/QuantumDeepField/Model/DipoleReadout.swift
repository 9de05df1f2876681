import Foundation

// The dipole moment from the model's density (docs/model.md §20): μ computed by
// physics from ρ instead of learned by a readout.
//
// The field grid's ρ_i (model units: Σ_i ρ_i = N_e) is a set of point charges at the field
// points r_i = R_a + S_s (§2). The grid never comes within 0.26 Å of a nucleus, so it holds
// no core: the frozen 1s² cores of Li–Ne (§11) sit at their nuclei, spherical, and the grid's
// electrons are the other N_e − N_core, so ρ is scaled by κ = (N_e − N_core)/N_e:
//
//     μ = Σ_a (Z_a − c_a)(R_a − O) − κ Σ_i ρ_i (r_i − O)          (e·Å; × 4.803204 for debye)
//
// with c_a the core electrons of atom a (2 for Li–Ne, 0 for H and He) and O the centre of
// nuclear charge. For a neutral molecule with Σ_i ρ_i = N_e the result does not depend on O;
// O only keeps the sums small. The readout is |μ| (QM9's μ), and
//
//     ∂|μ|/∂ρ_i = −4.803204 · κ · μ̂ · (r_i − O)        (0 where μ = 0)
//
// after which dψ_ij = 2 ψ_ij ∂/∂ρ_i, as for the density term (§16).

/// The dipole moment of one molecule from its density on the field grid.
package enum DipoleReadout {
    /// Debye per e·Å (e = 1.602176634e-19 C, Å = 1e-10 m, D = 1e-21/c C·m).
    package static let debyePerElectronAngstrom = 4.803204

    /// The frame of one molecule: its `Centre` and the field points relative to O.
    package struct Frame: Sendable {
        /// O, the nuclear part of μ and κ.
        package var centre: Centre
        /// r_i − O for every field point, in field order (atom by atom, sphere by sphere).
        package var points: [SIMD3<Double>]

        /// The frame of `molecule` (positions as placed for the model) on `sphere` (§2).
        package init(molecule m: Molecule, sphere: [SIMD3<Double>]) {
            let c = Centre(molecule: m)
            centre = c
            points = []
            points.reserveCapacity(m.positions.count * sphere.count)
            for r in m.positions { for s in sphere { points.append(r + s - c.origin) } }
        }
    }

    /// The parts of a frame that do not depend on the grid: O, the nuclear dipole and κ (the
    /// chunked large-molecule path uses these and forms r_i − O point by point).
    package struct Centre: Sendable {
        /// O, the centre of nuclear charge (Å).
        package var origin: SIMD3<Double>
        /// Σ_a (Z_a − c_a)(R_a − O) (e·Å).
        package var nuclear: SIMD3<Double>
        /// κ = (N_e − N_core)/N_e.
        package var kappa: Double

        package init(molecule m: Molecule) {
            let z = m.atomicNumbers.map(Double.init)
            let total = z.reduce(0, +)
            var origin = SIMD3<Double>(repeating: 0)
            for (za, r) in zip(z, m.positions) { origin += za * r }
            origin /= max(total, 1)
            var nuclear = SIMD3<Double>(repeating: 0), core = 0
            for (za, r) in zip(m.atomicNumbers, m.positions) {
                let c = AtomicCore.electrons(za) ?? 0
                core += c
                nuclear += Double(za - c) * (r - origin)
            }
            self.origin = origin
            self.nuclear = nuclear
            kappa = total > 0 ? (total - Double(core)) / total : 0
        }

        /// μ (e·Å) for the electronic sum Σ_i ρ_i (r_i − O).
        package func dipole(electronic: SIMD3<Double>) -> SIMD3<Double> { nuclear - kappa * electronic }
    }

    /// |μ| in debye of μ in e·Å.
    package static func debye(_ mu: SIMD3<Double>) -> Double {
        (mu * mu).sum().squareRoot() * debyePerElectronAngstrom
    }

    /// μ (e·Å) of a molecule with density `rho` (one value per field point, model units).
    package static func vector(rho: UnsafePointer<Float>, frame f: Frame) -> SIMD3<Double> {
        var electronic = SIMD3<Double>(repeating: 0)
        for (i, p) in f.points.enumerated() { electronic += Double(rho[i]) * p }
        return f.centre.dipole(electronic: electronic)
    }

    /// |μ| in debye.
    package static func magnitude(rho: UnsafePointer<Float>, frame f: Frame) -> Double {
        debye(vector(rho: rho, frame: f))
    }

    /// Adds d|μ|·∂|μ|/∂ρ_i to `dRho` (one value per field point) for the upstream gradient
    /// `dMagnitude` (of the loss with respect to |μ| in debye).
    package static func backward(dMagnitude: Double, rho: UnsafePointer<Float>, frame f: Frame,
                                 dRho: UnsafeMutablePointer<Float>) {
        let mu = vector(rho: rho, frame: f)
        let norm = (mu * mu).sum().squareRoot()
        guard norm > 0 else { return }
        let g = -dMagnitude * debyePerElectronAngstrom * f.centre.kappa / norm
        for (i, p) in f.points.enumerated() { dRho[i] += Float(g * (mu * p).sum()) }
    }
}
