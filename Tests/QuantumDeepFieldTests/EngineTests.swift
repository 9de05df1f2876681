import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

@Suite("Grid, basis, potential and orbitals")
struct EngineTests {
    @Test("56 grid points per atom at the defaults, x-major order, no origin")
    func sphere() {
        let s = GridField.sphere(radius: 0.75, interval: 0.3)
        #expect(s.count == 56)
        #expect(GridField.axis(radius: 0.75, interval: 0.3).count == 6)
        #expect(abs(s[0].x + 0.45) < 1e-12)  // ±0.75 only with y = z = 0, which the axis lacks
        for (a, b) in zip(s, s.dropFirst()) {
            #expect(a.x < b.x || (a.x == b.x && (a.y < b.y || (a.y == b.y && a.z < b.z))))
        }
        #expect(s.allSatisfy { ($0 * $0).sum() <= 0.75 * 0.75 && $0 != .zero })
        // A grid whose axis contains 0 drops the origin itself.
        let t = GridField.sphere(radius: 0.6, interval: 0.3)
        #expect(!t.contains(.zero))
        #expect(t.count == 32)  // 5³ points in a cube with |p| ≤ 0.6, minus the origin (counted by hand below)
        let axis = [-0.6, -0.3, 0.0, 0.3, 0.6]
        var n = 0
        for x in axis { for y in axis { for z in axis where x * x + y * y + z * z <= 0.36 + 1e-12 && !(x == 0 && y == 0 && z == 0) { n += 1 } } }
        #expect(t.count == n)
    }

    @Test("Basis-set names: inner and outer counts")
    func basisNames() throws {
        let b = try BasisSet("6-31G")
        #expect(b.inner == 6 && b.outer == 4)
        let c = try BasisSet("3-21G")
        #expect(c.inner == 3 && c.outer == 3)
        let d = try BasisSet("6-311G")
        #expect(d.inner == 6 && d.outer == 5)
        #expect(throws: QDFError.self) { try BasisSet("STO-3G") }
        #expect(throws: QDFError.self) { try BasisSet("6-31") }
        #expect(throws: QDFError.self) { try BasisSet("G") }
    }

    @Test("Orbital layout and names for H and heavy atoms")
    func orbitalNames() throws {
        let b = try BasisSet("6-31G")
        let h = b.functions(atomicNumber: 1)
        #expect(h.map(\.name) == ["H1s0", "H1s1", "H1s2", "H1s3"])
        #expect(h.allSatisfy { $0.q == 1 })
        let c = b.functions(atomicNumber: 6)
        #expect(c.count == 14)
        #expect(c.map(\.name) == (0..<6).map { "C1s\($0)" } + (0..<4).map { "C2s\($0)" } + (0..<4).map { "C2p\($0)" })
        #expect(c.map(\.q) == [Int](repeating: 1, count: 6) + [Int](repeating: 2, count: 8))
        #expect(b.functions(atomicNumber: 2).count == 4)  // He like H
    }

    @Test("Orbital dictionary: order of first appearance; reference mapping", .enabled(if: Shared.available, Shared.skipMessage))
    func dictionary() throws {
        let data = try Dataset.load(directory: Shared.dataset("QM9under14atoms_atomizationenergy_eV"))
        let d = data.orbitalDictionary(basis: try BasisSet("6-31G"))
        #expect(d.count == 60)
        let json = try String(contentsOfFile: Shared.path("reference/orbital_dict_6-31G.json"), encoding: .utf8)
        #expect(d == (try OrbitalDictionary(json: json)))
    }

    @Test("Distances: an exact zero becomes 1e6; potential against a hand computation")
    func potential() throws {
        let m = Molecule(id: "h2", atomicNumbers: [1, 1], positions: [SIMD3(0, 0, 0), SIMD3(0, 0, 0.74)])
        #expect(GridField.distance(SIMD3(1, 2, 3), SIMD3(1, 2, 3)) == 1e6)
        // V(p) = −Σ Z exp(−d²): at p = (0.15, 0.15, 0.15)
        let p = SIMD3(0.15, 0.15, 0.15)
        let d1 = (0.0675).squareRoot(), d2 = (0.15 * 0.15 * 2 + (0.15 - 0.74) * (0.15 - 0.74)).squareRoot()
        let hand = -exp(-d1 * d1) - exp(-d2 * d2)
        #expect(abs(GridField.potential(at: p, molecule: m) - hand) < 1e-12)
        // The same value in a geometry's potential (as Float).
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary(); dict.add(m, basis: basis)
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 8, hiddenHK: 8), dictionary: dict)
        let g = try model.geometry(m, withPotential: true)
        #expect(g.fieldCount == 112 && g.orbitalCount == 8 && g.electronCount == 2)
        let i = model.sphere.firstIndex { abs($0.x - 0.15) < 1e-9 && abs($0.y - 0.15) < 1e-9 && abs($0.z - 0.15) < 1e-9 }!
        #expect(abs(Double(g.potential[i]) - hand) < 1e-6)
        // A grid point that lands exactly on another atom gets distance 1e6 to it.
        let n2 = Molecule(id: "x", atomicNumbers: [1, 1], positions: [SIMD3(0, 0, 0), model.sphere[3]])
        let g2 = try model.geometry(n2)
        #expect(g2.distances[3 * 2 + 1] == 1e6)
    }

    @Test("Σψ² = N_e for every molecule, and ρ sums to N_e over the field grid")
    func normalization() throws {
        let mols = FastPathTests.molecules()
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in mols { dict.add(m, basis: basis) }
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 64, hiddenHK: 16), dictionary: dict)
        let engine = Engine(model: model)
        let geoms = try mols.map { try model.geometry($0) }
        let fields = engine.orbitalFields(geoms, parameters: model.parameters)
        for (m, g) in geoms.enumerated() {
            let psi = fields[m].orbitals
            var sum = 0.0
            for k in 0..<(g.fieldCount * 64) { sum += Double(psi[k]) * Double(psi[k]) }
            #expect(abs(sum - Double(g.electronCount)) < 1e-3 * Double(g.electronCount))
            let rho = fields[m].density
            let total = (0..<g.fieldCount).reduce(0.0) { $0 + Double(rho[$1]) }
            #expect(abs(total - Double(g.electronCount)) < 1e-3 * Double(g.electronCount))
        }
    }

    @Test("Engine forward matches the independent Float64 implementation")
    func forwardAgainstFloat64() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let reference = DoubleReference(model)
        let e = Engine(model: model).predict(geoms, parameters: model.parameters)
        for (g, v) in zip(geoms, e) {
            let r = reference.energy(g)
            for q in 0..<2 { #expect(abs(Double(v[q]) - r[q]) < 1e-4 * max(1, abs(r[q]))) }
        }
    }

    @Test("Unknown elements are refused, naming them")
    func unknownElements() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        dict.add(Molecule(id: "ch4", atomicNumbers: [6, 1], positions: [.zero, SIMD3(1, 0, 0)]), basis: basis)
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 8, hiddenHK: 8), dictionary: dict)
        let bad = Molecule(id: "SiCl", atomicNumbers: [14, 17, 6], positions: [.zero, SIMD3(2, 0, 0), SIMD3(0, 2, 0)])
        do {
            _ = try model.geometry(bad)
            Issue.record("expected an error")
        } catch let e as QDFError {
            #expect(e.message.contains("Si, Cl"))
            #expect(e.message.contains("SiCl"))
        }
    }
}
