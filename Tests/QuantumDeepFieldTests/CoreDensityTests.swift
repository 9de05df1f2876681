import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity

/// Frozen atomic cores under the model's density, and density supervision (docs/density.md,
/// docs/model.md §16).
@Suite("Frozen cores and density targets")
struct CoreDensityTests {
    static let ethaneLike = Molecule(id: "c2h6", atomicNumbers: [6, 6, 1, 1, 1, 1, 1, 1],
                                     positions: [SIMD3(0, 0, 0.765), SIMD3(0, 0, -0.765), SIMD3(1.02, 0, 1.16),
                                                 SIMD3(-0.51, 0.88, 1.16), SIMD3(-0.51, -0.88, 1.16), SIMD3(-1.02, 0, -1.16),
                                                 SIMD3(0.51, -0.88, -1.16), SIMD3(0.51, 0.88, -1.16)])

    /// ∫ 4π r² ρ_core(r) dr by Simpson's rule on [0, 12] bohr with 240,000 intervals.
    static func radialIntegral(_ z: Int) -> Double {
        let n = 240_000, h = 12.0 / Double(n)
        var s = 0.0
        for i in 0...n {
            let r = Double(i) * h
            let w: Double = (i == 0 || i == n) ? 1 : (i % 2 == 1 ? 4 : 2)
            s += w * 4 * Double.pi * r * r * AtomicCore.density(z, r2: r * r)
        }
        return s * h / 3
    }

    @Test("Each tabulated core (Li–Ne) holds 2 electrons on a fine radial grid; H and He have none, Na and beyond no table")
    func coreIntegrals() {
        for z in 3...10 {
            #expect(AtomicCore.electrons(z) == 2)
            let n = Self.radialIntegral(z)
            #expect(abs(n - 2) < 1e-6, "Z = \(z): ∫ρ_core = \(n)")
        }
        #expect(AtomicCore.electrons(1) == 0 && AtomicCore.electrons(2) == 0)
        #expect(AtomicCore.electrons(16) == nil && AtomicCore.density(16, r2: 0) == 0)
        // The carbon 1s density at the nucleus: 2·(ζ³/π) with Slater's ζ = 5.7 gives 117;
        // DFT's total density at a carbon nucleus is ≈ 116 e/bohr³ (the seed's cubes).
        let c0 = AtomicCore.density(6, r2: 0)
        #expect(c0 > 100 && c0 < 130, "ρ_core,C(0) = \(c0)")
        // Heavier atoms have tighter cores.
        #expect(AtomicCore.density(9, r2: 0) > AtomicCore.density(8, r2: 0) && AtomicCore.density(8, r2: 0) > c0)
        #expect(AtomicCore.density(6, r2: 1) < 1e-2 * c0)
    }

    @Test("A molecule's cores: N_core, the sum of its atoms' cores, elements without a table")
    func moleculeCores() {
        let c = FrozenCores(Self.ethaneLike)
        #expect(c.electronCount == 4 && !c.isEmpty && c.uncoveredElements.isEmpty)
        let p = SIMD3(0.1, -0.2, 0.5)  // Å
        let pb = p * bohrPerAngstrom
        var sum = 0.0
        for (z, r) in zip(Self.ethaneLike.atomicNumbers, Self.ethaneLike.positions) {
            let d = pb - r * bohrPerAngstrom
            sum += AtomicCore.density(z, r2: (d * d).sum())
        }
        #expect(abs(c.density(angstrom: [p])[0] - sum) <= 1e-12 * sum && sum > 0)
        let h2 = FrozenCores(Molecule(id: "h2", atomicNumbers: [1, 1], positions: [SIMD3(0, 0, 0), SIMD3(0.74, 0, 0)]))
        #expect(h2.isEmpty && h2.electronCount == 0 && h2.density(bohr: .zero) == 0)
        let ch3sh = FrozenCores(Molecule(id: "x", atomicNumbers: [6, 16], positions: [SIMD3(0, 0, 0), SIMD3(1.8, 0, 0)]))
        #expect(ch3sh.electronCount == 2 && ch3sh.uncoveredElements == ["S"])
    }

    @Test("Valence only is today's cube exactly; the total adds the cores to a valence part holding N_e − N_core")
    func totalAndValenceOnly() throws {
        let model = try smallDensityModel()
        let mol = Self.ethaneLike
        let field = try DensityField(model: model, molecule: mol)
        let grid = CubeGrid.around(mol, resolution: 0.2 * bohrPerAngstrom, margin: 3)
        let valence = try DensityCube.compute(field, grid: grid, content: .valenceOnly)
        // Today's definition, computed independently: s·ρ with s = N_e / (Σρ ΔV).
        let rho = field.density(at: (0..<grid.pointCount).map { grid.point($0) * angstromPerBohr })
        let s = 18 / (rho.reduce(0.0) { $0 + Double($1) } * grid.voxelVolume)
        #expect(valence.density.values == rho.map { $0 * Float(s) })
        #expect(valence.density.comments[0].hasPrefix("QDF electron density of c2h6 (e/bohr^3), scaled by"))
        #expect(valence.cores == nil && valence.content == .valenceOnly)

        let total = try DensityCube.compute(field, grid: grid, content: .total)
        let cores = try #require(total.cores)
        #expect(cores.electronCount == 4)
        #expect(total.density.comments[0].contains("total electron density") && total.density.comments[0].contains("frozen 1s cores (4 e)"))
        var coreSum = 0.0, maxDiff: Float = 0
        for i in 0..<grid.pointCount {
            let c = cores.density(bohr: grid.point(i))
            coreSum += c
            maxDiff = max(maxDiff, abs(total.density.values[i] - (rho[i] * Float(total.scale) + Float(c))))
        }
        #expect(maxDiff < 1e-4)
        // The valence part holds N_e − N_core over the box, the cores (analytically) N_core.
        #expect(abs(total.density.integral - coreSum * grid.voxelVolume - 14) < 1e-3)
        #expect(abs(total.scale / valence.scale - 14.0 / 18.0) < 1e-12)
        let coreAnalytic = Self.radialIntegral(6) * 2
        #expect(abs(total.density.integral - coreSum * grid.voxelVolume + coreAnalytic - 18) < 1e-3, "N_e")
        // Profiles carry the same cores: at a carbon nucleus the total is the core's cusp.
        let p = try DensityProfile.model(field, atoms: 0, 1, scale: total.scale, cores: cores, beyond: 0, count: 201)
        let q = try DensityProfile.model(field, atoms: 0, 1, scale: valence.scale, cores: nil, beyond: 0, count: 201)
        #expect(p.s[0] == 0 && p.density[0] > 100 && q.density[0] < 5, "at the nucleus: total \(p.density[0]), valence \(q.density[0])")
    }

    @Test("The reference model's total density is DFT's picture: ethane and benzene against B3LYP cubes",
          .enabled(if: Shared.available, Shared.skipMessage))
    func referenceAgainstDFT() throws {
        let model = try QDFModel.load(path: Shared.referenceModel)
        for name in ["ethane", "benzene"] {
            let mol = try readMolecules(Shared.path("reference/dft/\(name).xyz"))[0]
            let dft = try CubeFile.read(path: Shared.path("reference/dft/\(name).cube"))
            let field = try DensityField(model: model, molecule: mol)
            let grid = CubeGrid.around(mol, resolution: 0.1 * bohrPerAngstrom, margin: 3)
            let valence = try DensityComparison.compare(try DensityCube.compute(field, grid: grid, content: .valenceOnly).density, reference: dft)
            let totalCube = try DensityCube.compute(field, grid: grid, content: .total).density
            let total = try DensityComparison.compare(totalCube, reference: dft)
            let (core, rest) = try DensityComparison.regions(totalCube, reference: dft, coreRadius: 0.3 * bohrPerAngstrom)
            // The figures: 0.65–0.74 and r 0.21–0.29 without cores.
            #expect(valence.relativeDifference > 0.6 && valence.pearson < 0.35, "\(name): valence only \(valence.relativeDifference), r \(valence.pearson)")
            #expect(total.relativeDifference < 0.45 && total.pearson > 0.99, "\(name): total \(total.relativeDifference), r \(total.pearson)")
            #expect(abs(core.relativeDifference + rest.relativeDifference - total.relativeDifference) < 1e-9)
            #expect(core.relativeDifference < 0.05, "\(name): core region \(core.relativeDifference)")
        }
    }

    // MARK: density targets

    /// A synthetic "DFT" density of `m` on its cube grid: the frozen cores plus one Gaussian
    /// per atom (exponent 1.2 bohr⁻², weight Z − core electrons).
    static func syntheticCube(_ m: Molecule, spacing: Double = 0.15) -> CubeFile {
        let grid = CubeGrid.around(m, resolution: spacing * bohrPerAngstrom, margin: 3)
        let cores = FrozenCores(m)
        let values = (0..<grid.pointCount).map { i -> Float in
            let p = grid.point(i)
            return Float(cores.density(bohr: p) + valence(m, bohr: p))
        }
        return CubeFile(comments: ["synthetic", "test"], grid: grid, atoms: CubeFile.atoms(of: m), values: values)
    }

    static func valence(_ m: Molecule, bohr p: SIMD3<Double>) -> Double {
        var v = 0.0
        for (z, r) in zip(m.atomicNumbers, m.positions) {
            let d = p - r * bohrPerAngstrom
            v += Double(z - (AtomicCore.electrons(z) ?? 0)) * pow(1.2 / Double.pi, 1.5) * exp(-1.2 * (d * d).sum())
        }
        return v
    }

    @Test("A cube becomes the valence target on the field grid (cores removed, Σq = N_e); wrong cubes are refused by name")
    func targetsFromCubes() throws {
        let m = Self.ethaneLike
        let sphere = GridField.sphere(radius: 0.75, interval: 0.3)
        let dir = try TemporaryDirectory()
        let cube = Self.syntheticCube(m)
        try Gzip.compress(cube.data()).write(to: URL(fileURLWithPath: dir.file("c2h6.cube.gz")))
        let (targets, missing) = try DensityTargets.load(directory: dir.path, molecules: [m, GradientTests.molecules()[0]], sphere: sphere)
        #expect(missing == 1 && targets.count == 1)
        let q = try #require(targets["c2h6"])
        #expect(q.count == sphere.count * m.atomCount)
        #expect(abs(q.reduce(0.0) { $0 + Double($1) } - 18) < 1e-3)
        // Against the exact valence function at the field points, scaled the same way.
        var exact = [Double]()
        for a in 0..<m.atomCount { for s in sphere { exact.append(Self.valence(m, bohr: (s + m.positions[a]) * bohrPerAngstrom)) } }
        let f = 18 / exact.reduce(0, +)
        let worst = zip(q, exact).map { abs(Double($0) - $1 * f) }.max()!
        let top = exact.max()! * f
        #expect(worst < 0.03 * top, "max |q − exact| = \(worst) of \(top)")
        // A cube of another molecule, and a box that does not cover the grid.
        var moved = m
        moved.positions[2].x += 0.1
        #expect(throws: QDFError.self) { try DensityTargets.target(cube: cube, path: "c2h6.cube", molecule: moved, sphere: sphere) }
        do { _ = try DensityTargets.target(cube: cube, path: "c2h6.cube", molecule: moved, sphere: sphere) } catch let e as QDFError {
            #expect(e.description.contains("c2h6.cube") && e.description.contains("atom 3"))
        }
        var small = cube
        small.grid = CubeGrid.around(m, resolution: 0.15 * bohrPerAngstrom, margin: 0.5)
        small.values = [Float](repeating: 0.1, count: small.grid.pointCount)
        #expect(throws: QDFError.self) { try DensityTargets.target(cube: small, path: "small.cube", molecule: m, sphere: sphere) }
    }

    @Test("Density supervision trains (it changes the model) and resumes bit-identically")
    func supervisedTraining() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let cubes = dir.file("cubes")
        try FileManager.default.createDirectory(atPath: cubes, withIntermediateDirectories: true)
        for m in data.train.prefix(10) { try Self.syntheticCube(m, spacing: 0.25).write(path: cubes + "/\(m.id).cube") }
        var o = try TrainingTests.smallOptions(epochs: 3)
        o.densityTargets = cubes
        o.densityWeight = 2
        let sphere = GridField.sphere(radius: o.hyper.radius, interval: o.hyper.gridInterval)
        let targets = try DensityTargets.load(directory: cubes, molecules: data.train, sphere: sphere).targets
        #expect(targets.count == 10)
        let full = try Trainer(dataset: data, options: o, runDirectory: dir.file("full"), densityTargets: targets)
        #expect(try full.train() == .finished)
        var plain = o
        plain.densityTargets = nil; plain.densityWeight = 0
        let without = try Trainer(dataset: data, options: plain, runDirectory: dir.file("plain"))
        #expect(try without.train() == .finished)
        #expect(without.model.parameters != full.model.parameters)
        #expect(zip(full.records, without.records).allSatisfy { $0.lossV > $1.lossV })
        // Interrupt, resume with the targets reloaded from the recorded folder, finish.
        let b = try Trainer(dataset: data, options: o, runDirectory: dir.file("b"), densityTargets: targets)
        var batches = 0
        _ = try b.train(shouldStop: { batches == 8 }) { if case .batch = $0 { batches += 1 } }
        #expect(throws: QDFError.self) { try Trainer.resume(runDirectory: dir.file("b")) }
        let b2 = try Trainer.resume(runDirectory: dir.file("b")) { options, architecture, train in
            try DensityTargets.load(directory: options.densityTargets!, molecules: train, sphere: architecture.sphere).targets
        }
        #expect(b2.options == o)
        #expect(try b2.train() == .finished)
        #expect(b2.model.parameters == full.model.parameters)
        // Options that cannot work are refused.
        var bad = o
        bad.hkMap = false
        #expect(throws: QDFError.self) { try bad.validate() }
        bad = plain
        bad.densityWeight = 1
        #expect(throws: QDFError.self) { try bad.validate() }
    }
}
