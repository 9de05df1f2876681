import Foundation
import Testing
import QuantumDeepField

// The dipole moment from the density (Model/DipoleReadout.swift): values by hand and the
// gradient by finite differences.
@Suite("Dipole readout")
struct DipoleReadoutTests {
    static let sphere = GridField.sphere(radius: 0.75, interval: 0.3)

    @Test("Hand-computed: a density that follows the nuclei has no dipole; moving charge gives q·d in debye")
    func values() throws {
        // H2 along x: 2 electrons, no cores. ρ spread evenly over both spheres → μ = 0.
        let h2 = Molecule(id: "h2", atomicNumbers: [1, 1], positions: [SIMD3(0, 0, 0), SIMD3(0.74, 0, 0)])
        let f = DipoleReadout.Frame(molecule: h2, sphere: Self.sphere)
        let n = f.points.count
        var rho = [Float](repeating: 2 / Float(n), count: n)
        #expect(DipoleReadout.magnitude(rho: rho, frame: f) < 1e-6)
        // Half an electron moved from atom 0's sphere to atom 1's: μ = −0.5 e × 0.74 Å along x.
        let per = Self.sphere.count
        for i in 0..<per { rho[i] -= 0.5 / Float(per); rho[per + i] += 0.5 / Float(per) }
        let mu = DipoleReadout.magnitude(rho: rho, frame: f)
        #expect(abs(mu - 0.5 * 0.74 * DipoleReadout.debyePerElectronAngstrom) < 1e-4, "\(mu)")
        // CO: the frozen 1s² cores stay on the nuclei; the grid holds 10 of 14 electrons (κ = 10/14).
        let co = Molecule(id: "co", atomicNumbers: [6, 8], positions: [SIMD3(0, 0, 0), SIMD3(1.128, 0, 0)])
        let g = DipoleReadout.Frame(molecule: co, sphere: Self.sphere)
        #expect(abs(g.kappa - 10.0 / 14.0) < 1e-12)
        // ρ as 4 valence electrons on C and 6 on O (scaled to Σρ = 14): a neutral-atom density, no dipole.
        let m = Self.sphere.count
        let r = (0..<(2 * m)).map { i in Float(i < m ? 4.0 : 6.0) * 14 / 10 / Float(m) }
        #expect(DipoleReadout.magnitude(rho: r, frame: g) < 1e-5)
    }

    @Test("The gradient matches central finite differences (Float64 sums of Float32 ρ)")
    func gradient() throws {
        let m = Molecule(id: "hcn", atomicNumbers: [1, 6, 7],
                         positions: [SIMD3(-1.06, 0.1, 0), SIMD3(0, 0, 0), SIMD3(1.15, -0.05, 0.02)])
        let f = DipoleReadout.Frame(molecule: m, sphere: Self.sphere)
        var rng = RandomGenerator(seed: 4)
        var rho = (0..<f.points.count).map { _ in Float(rng.nextUniform(0, 0.3)) }
        var dRho = [Float](repeating: 0, count: rho.count)
        DipoleReadout.backward(dMagnitude: 1.7, rho: rho, frame: f, dRho: &dRho)
        let h: Float = 1e-2
        for i in stride(from: 0, to: rho.count, by: 7) {
            let keep = rho[i]
            rho[i] = keep + h; let up = DipoleReadout.magnitude(rho: rho, frame: f)
            rho[i] = keep - h; let down = DipoleReadout.magnitude(rho: rho, frame: f)
            rho[i] = keep
            let fd = 1.7 * (up - down) / Double(2 * h)
            #expect(abs(fd - Double(dRho[i])) < 1e-3 * max(1, abs(fd)), "point \(i): finite differences \(fd), backward \(dRho[i])")
        }
    }
}
