import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// A small seeded model (random coefficients, ζ varied per type) that knows H, C, N, O, F.
func smallDensityModel() throws -> QDFModel {
    var dict = OrbitalDictionary()
    let basis = try BasisSet("6-31G")
    for z in [1, 6, 7, 8, 9] { for f in basis.functions(atomicNumber: z) { dict.add(f.name) } }
    var m = try QDFModel(hyper: Hyperparameters(dim: 40, layerFunctional: 1, hiddenHK: 8, layerHK: 1),
                         dictionary: dict, seed: 7)
    // Distinct exponents so that the basis functions differ.
    let e = m.layout["zeta.weight"]!
    for (n, i) in e.range.enumerated() { m.parameters[i] = 0.4 + 0.15 * Float(n % 11) }
    return m
}

/// Acetylene along x, exactly symmetric about the origin: H1 C2 C3 H4.
private let acetylene = Molecule(id: "acetylene", atomicNumbers: [1, 6, 6, 1],
                                 positions: [SIMD3(-1.663, 0, 0), SIMD3(-0.6015, 0, 0), SIMD3(0.6015, 0, 0), SIMD3(1.663, 0, 0)])

@Suite("Density")
struct DensityTests {
    // MARK: field points

    @Test("ρ and ψ at the field points equal the engine's training-grid values (seeded model, ethane-like)")
    func fieldPointsMatchEngine() throws {
        let model = try smallDensityModel()
        let mol = Molecule(id: "m", atomicNumbers: [6, 8, 1, 1, 1, 1],
                           positions: [SIMD3(0, 0, 0), SIMD3(1.41, 0.02, -0.03), SIMD3(-0.5, 0.93, 0.1),
                                       SIMD3(-0.52, -0.47, 0.81), SIMD3(-0.4, -0.45, -0.9), SIMD3(1.75, -0.87, 0.2)])
        try checkFieldPoints(model: model, molecule: mol)
    }

    @Test("ρ at the field points equals the engine's ρ with the reference model (ethane, benzene)",
          .enabled(if: Shared.available, Shared.skipMessage))
    func fieldPointsMatchEngineReference() throws {
        let model = try QDFModel.load(path: Shared.referenceModel)
        for name in ["ethane", "benzene"] {
            try checkFieldPoints(model: model, molecule: try readMolecules(Shared.path("reference/dft/\(name).xyz"))[0])
        }
    }

    private func checkFieldPoints(model: QDFModel, molecule mol: Molecule) throws {
        let engine = Engine(model: model)
        let g = try model.geometry(mol)
        let fields = engine.orbitalFields([g], parameters: model.parameters)
        let rhoEngine = fields[0].density, psiEngine = fields[0].orbitals
        let field = try DensityField(model: model, molecule: mol)
        let pts = field.fieldPoints
        #expect(pts.count == g.fieldCount)
        let (rho, psi) = field.evaluate(count: pts.count, orbitals: [0, 3]) { pts[$0] }
        var maxRho: Float = 0, maxDiff: Float = 0, sum = 0.0
        for i in 0..<pts.count {
            maxRho = max(maxRho, rhoEngine[i])
            maxDiff = max(maxDiff, abs(rho[i] - rhoEngine[i]))
            sum += Double(rho[i])
        }
        #expect(maxDiff <= 2e-5 * maxRho, "max |ρ − ρ_engine| = \(maxDiff), max ρ = \(maxRho)")
        // Σ_i ρ_i over the field grid is N_e (docs/model.md §5).
        #expect(abs(sum - Double(mol.electronCount)) < 1e-3 * Double(mol.electronCount), "Σρ = \(sum)")
        let dim = model.hyper.dim
        var psiDiff: Float = 0, psiMax: Float = 0
        for i in 0..<pts.count {
            for (o, j) in [0, 3].enumerated() {
                psiMax = max(psiMax, abs(psiEngine[i * dim + j]))
                psiDiff = max(psiDiff, abs(psi[o][i] - psiEngine[i * dim + j]))
            }
        }
        #expect(psiDiff <= 2e-5 * psiMax, "max |ψ − ψ_engine| = \(psiDiff), max |ψ| = \(psiMax)")
    }

    // MARK: normalization

    @Test("The valence-only cube integrates to N_e, also after writing and reading it; the scale converges with the grid",
          .enabled(if: Shared.available, Shared.skipMessage))
    func integralIsElectronCount() throws {
        let model = try QDFModel.load(path: Shared.referenceModel)
        let mol = try readMolecules(Shared.path("reference/dft/ethane.xyz"))[0]
        let field = try DensityField(model: model, molecule: mol)
        let fine = try DensityCube.compute(field, grid: CubeGrid.around(mol, resolution: 0.1 * bohrPerAngstrom, margin: 3), content: .valenceOnly)
        #expect(abs(fine.density.integral - 18) < 1e-3, "∫ρ = \(fine.density.integral)")
        let dir = try TemporaryDirectory()
        try fine.density.write(path: dir.file("e.cube"))
        let back = try CubeFile.read(path: dir.file("e.cube"))
        #expect(abs(back.integral - 18) < 1e-3, "∫ρ from the file = \(back.integral)")
        #expect(back.electronCount == 18)
        // The scale is a property of ρ, not of the grid: a grid twice as coarse gives it within
        // 1%, and growing the box from 5 to 8 bohr of margin changes it by less than 0.5%
        // (the 3-bohr box misses about 2.5% of the model's diffuse tail, see docs/density.md).
        func scale(_ spacing: Double, _ margin: Double) throws -> Double {
            try DensityCube.compute(field, grid: CubeGrid.around(mol, resolution: spacing * bohrPerAngstrom, margin: margin), content: .valenceOnly).scale
        }
        let coarse = try scale(0.2, 3)
        #expect(abs(coarse / fine.scale - 1) < 0.01, "scale \(coarse) vs \(fine.scale)")
        let s5 = try scale(0.2, 5), s8 = try scale(0.2, 8)
        #expect(abs(s5 / s8 - 1) < 0.005, "scale \(s5) (5 bohr) vs \(s8) (8 bohr)")
        #expect(fine.scale > s8)  // a smaller box holds fewer electrons
    }

    @Test("The default grid is the reference DFT cube's grid (PySCF cubegen rule)",
          .enabled(if: Shared.available, Shared.skipMessage))
    func defaultGridIsReferenceGrid() throws {
        for name in ["ethane", "benzene"] {
            let mol = try readMolecules(Shared.path("reference/dft/\(name).xyz"))[0]
            let ref = try CubeFile.read(path: Shared.path("reference/dft/\(name).cube"))
            let g = CubeGrid.around(mol, resolution: 0.1 * bohrPerAngstrom, margin: 3)
            #expect(g.counts == ref.grid.counts, "\(name): \(g.counts) vs \(ref.grid.counts)")
            #expect(max(abs(g.origin.x - ref.grid.origin.x), abs(g.origin.y - ref.grid.origin.y), abs(g.origin.z - ref.grid.origin.z)) < 2e-6)
            for d in 0..<3 { #expect(abs(g.axes[d][d] - ref.grid.axes[d][d]) < 2e-6) }
            #expect(ref.atoms.map(\.atomicNumber) == mol.atomicNumbers)
            // The reference cube itself integrates to about N_e (its box misses a little tail).
            #expect(abs(ref.integral - Double(mol.electronCount)) < 0.02 * Double(mol.electronCount), "\(name): ∫ρ_DFT = \(ref.integral)")
        }
    }

    // MARK: profiles

    @Test("The C–C profile of a symmetric molecule (acetylene) is symmetric about the bond centre")
    func symmetricProfile() throws {
        let model = try smallDensityModel()
        let field = try DensityField(model: model, molecule: acetylene)
        let p = try DensityProfile.model(field, atoms: 1, 2, scale: 1, cores: nil, count: 401)
        #expect(abs(p.bondLength - 1.203) < 1e-9)
        let top = p.density.max()!
        var worst = 0.0
        for i in 0..<p.s.count { worst = max(worst, abs(p.density[i] - p.density[p.s.count - 1 - i])) }
        #expect(worst <= 1e-5 * top, "max asymmetry \(worst), max ρ \(top)")
        // The profile is not flat (the test could otherwise not fail).
        #expect(p.density.min()! < 0.5 * top)
        // And the H–C profile is not symmetric.
        let q = try DensityProfile.model(field, atoms: 0, 1, scale: 1, cores: nil, count: 401)
        var asym = 0.0
        for i in 0..<q.s.count { asym = max(asym, abs(q.density[i] - q.density[q.s.count - 1 - i])) }
        #expect(asym > 1e-2 * q.density.max()!)
    }

    @Test("Profile points run from 1 Å before atom A to 1 Å beyond atom B; TSV round-trips")
    func profileGeometryAndTSV() throws {
        let (s, pts) = DensityProfile.points(from: SIMD3(0, 0, 0), to: SIMD3(0, 3, 4), beyond: 1, count: 8)
        #expect(s.first == -1 && abs(s.last! - 6) < 1e-12)
        #expect(abs(pts.last!.y - 6 * 0.6) < 1e-12 && abs(pts.first!.z + 0.8) < 1e-12)
        let p = DensityProfile(s: s, density: s.map { exp(-$0 * $0) }, bondLength: 5)
        let dir = try TemporaryDirectory()
        try writeAtomically(p.tsv(comment: "test"), to: dir.file("p.tsv"))
        let back = try DensityProfile.read(path: dir.file("p.tsv"))
        #expect(back.s.count == 8)
        for i in 0..<8 { #expect(abs(back.density[i] - p.density[i]) <= 1e-6 * p.density[i]) }
        #expect(p.peaks() == [1])  // s = −1 + 7/7 = 0 is the maximum of exp(−s²)
    }

    @Test("The reference DFT profile is the reference cube sampled along atoms 1 → 2",
          .enabled(if: Shared.available, Shared.skipMessage))
    func referenceProfileMatchesCube() throws {
        let cube = try CubeFile.read(path: Shared.path("reference/dft/ethane.cube"))
        let ref = try DensityProfile.read(path: Shared.path("reference/dft/ethane_profile.tsv"))
        let p = try DensityProfile.sample(cube, atoms: 0, 1, count: ref.s.count)
        for i in 0..<ref.s.count { #expect(abs(p.s[i] - ref.s[i]) < 6e-5) }
        // Away from the nuclear cusps (ρ < 0.5 e/bohr³, s beyond ~0.3 Å of a nucleus) trilinear
        // interpolation of the 0.1 Å grid is within 12% (scipy's map_coordinates, order 1, gives
        // at most 9.7% there); closer in, linear interpolation of the cusp is far off.
        var n = 0
        for i in 0..<ref.s.count where ref.density[i] < 0.5 {
            #expect(abs(p.density[i] - ref.density[i]) < 0.12 * ref.density[i] + 1e-4, "s = \(ref.s[i])")
            n += 1
        }
        #expect(n > 250)
        #expect(Set(ref.peaks().map { (ref.s[$0] * 10).rounded() / 10 }) == [0.0, 1.5])
    }

    // MARK: cube files

    @Test("A cube round-trips through the writer and reader")
    func cubeRoundTrip() throws {
        let grid = CubeGrid(origin: SIMD3(-3.25, 1.5, -0.125), axes: [SIMD3(0.2, 0, 0), SIMD3(0.01, 0.25, 0), SIMD3(0, 0, 0.3)],
                            counts: [3, 4, 13])
        var values = [Float]()
        for n in 0..<grid.pointCount { values.append(Float(sin(Double(n) * 0.37)) * pow(10, Float(n % 9) - 6)) }
        let atoms = [CubeAtom(atomicNumber: 6, charge: 6, position: SIMD3(0.5, -1.25, 2)),
                     CubeAtom(atomicNumber: 1, charge: 1, position: SIMD3(-0.75, 0.125, 1.5))]
        let cube = CubeFile(comments: ["first", "second"], grid: grid, atoms: atoms, values: values)
        let dir = try TemporaryDirectory()
        try cube.write(path: dir.file("a.cube"))
        let back = try CubeFile.read(path: dir.file("a.cube"))
        #expect(back.grid == grid)
        #expect(back.atoms == atoms)
        #expect(back.comments == ["first", "second"])
        for i in 0..<values.count {
            #expect(abs(back.values[i] - values[i]) <= 6e-6 * abs(values[i]), "value \(i): \(back.values[i]) vs \(values[i])")
        }
        // Layout: 13 z values per column = 3 lines (6 + 6 + 1), 12 columns.
        let lines = try String(contentsOfFile: dir.file("a.cube"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6 + 2 + 12 * 3)
        #expect(lines[8].count == 6 * 13)
        #expect(lines[10].count == 13)
    }

    @Test("Reading a bad cube names the file and line; writing never leaves a partial file")
    func cubeErrors() throws {
        let dir = try TemporaryDirectory()
        let head = "c1\nc2\n    1    0.0 0.0 0.0\n    2 0.1 0 0\n    2 0 0.1 0\n    2 0 0 0.1\n    6 6.0 0 0 0\n"
        let short = try dir.write("short.cube", head + "1 2 3 4 5 6\n7\n")
        #expect(throws: QDFError("file ends after 7 of 8 values (2×2×2)", file: short, line: 9)) { try CubeFile.read(path: short) }
        let bad = try dir.write("bad.cube", head + "1 2 3 4 5 6\n7 x8\n")
        #expect(throws: QDFError("value is not a number: 'x8'", file: bad, line: 9)) { try CubeFile.read(path: bad) }
        let header = try dir.write("header.cube", "c1\nc2\n    1    0.0 0.0\n")
        #expect(throws: QDFError("expected 'N_atoms origin_x origin_y origin_z', found '1    0.0 0.0'", file: header, line: 3)) {
            try CubeFile.read(path: header)
        }
        let long = try dir.write("long.cube", head + "1 2 3 4 5 6\n7 8 9\n")
        #expect(throws: QDFError.self) { try CubeFile.read(path: long) }
        // Writing into a missing folder fails and leaves nothing behind.
        let grid = CubeGrid(origin: .zero, axes: [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)], counts: [1, 1, 1])
        let c = CubeFile(comments: ["a", "b"], grid: grid, atoms: [], values: [1])
        #expect(throws: QDFError.self) { try c.write(path: dir.file("missing/x.cube")) }
        // Overwriting keeps a valid file.
        try c.write(path: dir.file("x.cube"))
        try c.write(path: dir.file("x.cube"))
        #expect(try CubeFile.read(path: dir.file("x.cube")).values == [1])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp.") }.isEmpty)
    }

    // MARK: comparison and resampling

    @Test("Trilinear resampling is exact for linear fields; a cube compared with itself is perfect")
    func comparison() throws {
        func f(_ r: SIMD3<Double>) -> Float { Float(2 + 0.5 * r.x - 0.25 * r.y + 0.125 * r.z) }
        let g1 = CubeGrid(origin: SIMD3(-2, -2, -2), axes: [SIMD3(0.2, 0, 0), SIMD3(0, 0.25, 0), SIMD3(0, 0, 0.2)], counts: [21, 17, 21])
        let g2 = CubeGrid(origin: SIMD3(-1.03, -0.97, -1.1), axes: [SIMD3(0.13, 0, 0), SIMD3(0, 0.11, 0), SIMD3(0, 0, 0.17)], counts: [15, 17, 12])
        let atoms = [CubeAtom(atomicNumber: 8, charge: 8, position: .zero)]
        let a = CubeFile(comments: ["", ""], grid: g1, atoms: atoms, values: (0..<g1.pointCount).map { f(g1.point($0)) })
        let b = CubeFile(comments: ["", ""], grid: g2, atoms: atoms, values: (0..<g2.pointCount).map { f(g2.point($0)) })
        for n in stride(from: 0, to: g2.pointCount, by: 7) {
            let v = try #require(a.interpolate(g2.point(n)))
            #expect(abs(v - b.values[n]) < 1e-5)
        }
        #expect(a.interpolate(SIMD3(2.1, 0, 0)) == nil)
        let same = try DensityComparison.compare(a, reference: a)
        #expect(same.sameGrid && same.maxDeviation == 0 && abs(same.pearson - 1) < 1e-12 && same.coverage == 1)
        let cross = try DensityComparison.compare(b, reference: a)
        #expect(!cross.sameGrid && cross.coverage == 1 && cross.maxDeviation < 1e-5 && abs(cross.pearson - 1) < 1e-9)
        // b's box is inside a's, not the other way round: a compared with b covers part of it.
        let partial = try DensityComparison.compare(a, reference: b)
        #expect(partial.coverage > 0 && partial.coverage < 0.5)
        // A different field: ∫|Δρ| = |c| · volume for a constant offset c.
        let shifted = CubeFile(comments: ["", ""], grid: g1, atoms: atoms, values: a.values.map { $0 + 0.5 })
        let d = try DensityComparison.compare(shifted, reference: a)
        #expect(abs(d.integratedAbsoluteDifference - 0.5 * Double(g1.pointCount) * g1.voxelVolume) < 1e-3)
        #expect(abs(d.relativeDifference - d.integratedAbsoluteDifference / 8) < 1e-12)
    }

    // MARK: planes

    @Test("Best plane of benzene contains its atoms; the plane through three atoms contains them")
    func planes() throws {
        let benzene = Molecule(id: "b", atomicNumbers: [6, 6, 6, 6, 6, 6],
                               positions: (0..<6).map { k in
                                   let t = Double(k) * .pi / 3
                                   return SIMD3(1.39 * cos(t), 1.39 * sin(t) * 0.8, 1.39 * sin(t) * 0.6) + SIMD3(1, 2, 3)
                               })
        let p = DensityPlane.best(benzene)
        for x in benzene.positions { #expect(abs(p.project(x).height) < 1e-9) }
        #expect(abs((p.u * p.v).sum()) < 1e-12)
        let five = acetylenePlusOffAxisAtom()
        let q = try DensityPlane.through(five, atoms: 0, 1, 4)
        for x in five.positions { #expect(abs(q.project(x).height) < 1e-9) }
        #expect(throws: QDFError.self) { try DensityPlane.through(acetylene, atoms: 0, 1, 2) }  // collinear
    }

    // MARK: figures

    @Test("Line plots and heat maps are real PNG files that decode to the drawn pixels")
    func pngFigures() throws {
        let dir = try TemporaryDirectory()
        var plot = LinePlot(title: "test", xLabel: "x", yLabel: "y")
        let xs = (0...100).map { Double($0) / 10 }
        plot.add("flat", x: xs, y: xs.map { _ in 0.5 }, color: PlotColor(1, 0, 0), lineWidth: 4)
        plot.add("ramp", x: xs, y: xs.map { $0 / 10 }, dashed: true)
        plot.yRange = 0...1
        try plot.write(path: dir.file("p.png"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("p.png")))
        #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(bytes.range(of: Data("IDAT".utf8)) != nil)
        #expect(bytes.count < 900 * 560)  // deflate-compressed
        let img = try PNGImage.read(path: dir.file("p.png"))
        #expect(img.width == 900 && img.height == 560)
        #expect(img.pixel(x: 2, y: 2) == (255, 255, 255, 255))
        // The red line at y = 0.5 crosses the plot area's middle height (top 50, bottom 495),
        // at x = 2.5 (left 90, right 875, x from 0 to 10): pixel (286, 272).
        let red = img.pixel(x: 286, y: 272)
        #expect(red.r > 200 && red.g < 60 && red.b < 60, "\(red)")

        var map = HeatMap(values: (0..<(20 * 10)).map { Float($0 % 20) }, columns: 20, rows: 10, xRange: 0...2, yRange: 0...1)
        map.cellSize = 10
        map.markers = [.init(x: 1, y: 0.5, label: "C1")]
        try map.write(path: dir.file("h.png"))
        let h = try PNGImage.read(path: dir.file("h.png"))
        #expect(h.width == 70 + 200 + 30 + 22 + 90 && h.height == 45 + 100 + 60)
        // Column 0 (value 0) is the bottom of viridis, column 19 the top; rows are uniform.
        let lo = HeatMap.viridis(0), hi = HeatMap.viridis(1)
        let p0 = h.pixel(x: 75, y: 100), p1 = h.pixel(x: 70 + 195, y: 50)
        #expect(abs(p0.r - Int(lo.r * 255)) <= 2 && abs(p0.g - Int(lo.g * 255)) <= 2 && abs(p0.b - Int(lo.b * 255)) <= 2, "\(p0)")
        #expect(abs(p1.r - Int(hi.r * 255)) <= 2 && abs(p1.g - Int(hi.g * 255)) <= 2 && abs(p1.b - Int(hi.b * 255)) <= 2, "\(p1)")
        // The marker at the centre is white-filled.
        let c = h.pixel(x: 70 + 100, y: 45 + 50)
        #expect(c.r > 240 && c.g > 240 && c.b > 240, "\(c)")
        #expect(throws: QDFError.self) { try PNGImage.read(path: dir.file("p.tsv")) }
    }
}

/// Acetylene shifted by (0, 1, 0) with a fifth atom off its axis (so the five atoms span a plane).
private func acetylenePlusOffAxisAtom() -> Molecule {
    Molecule(id: "a5", atomicNumbers: acetylene.atomicNumbers + [1],
             positions: acetylene.positions.map { $0 + SIMD3(0, 1, 0) } + [SIMD3(0.3, 2.5, 0.7)])
}
