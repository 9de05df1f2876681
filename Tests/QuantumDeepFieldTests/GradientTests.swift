import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Finite-difference checks of every hand-written backward pass: for each parameter
/// tensor, the engine's Float32 analytic gradients of Loss_E and Loss_V against central
/// differences of an independent Float64 implementation (DoubleReference), step 1e-5.
/// Tolerance: |analytic − numeric| ≤ 1e-3·max(|numeric|, 1e-2·(largest |gradient| of
/// that tensor)) — Float32 accumulations give ~1e-5 relative error, so 1e-3 catches any
/// wrong term while tolerating rounding. The orbital environment's tensors take the larger of
/// their own and the coefficients' largest gradient as that scale (their gradients come
/// through dC, rounded on the coefficients' scale; they are 10⁻³–1 of it here).
@Suite("Gradients (finite differences)")
struct GradientTests {
    static func molecules() -> [Molecule] {
        [
            Molecule(id: "water", atomicNumbers: [8, 1, 1],
                     positions: [SIMD3(0, 0, 0.1173), SIMD3(0, 0.7572, -0.4692), SIMD3(0, -0.7572, -0.4692)],
                     properties: [-9.5, 1.25]),
            Molecule(id: "methane", atomicNumbers: [6, 1, 1, 1, 1],
                     positions: [SIMD3(0, 0, 0), SIMD3(0.629, 0.629, 0.629), SIMD3(-0.629, -0.629, 0.629),
                                 SIMD3(-0.629, 0.629, -0.629), SIMD3(0.629, -0.629, -0.629)],
                     properties: [-17.2, -0.3]),
            Molecule(id: "hcn", atomicNumbers: [1, 6, 7],
                     positions: [SIMD3(0, 0, -1.6), SIMD3(0, 0, -0.53), SIMD3(0, 0, 0.62)],
                     properties: [-13.1, 0.7]),
        ]
    }

    static func model(_ op: Readout, layers: Int, environment: EnvironmentShape? = nil,
                      potentialFeatures: Int = 0) throws -> (QDFModel, [MoleculeGeometry]) {
        let basis = try BasisSet("3-21G")
        var dict = OrbitalDictionary()
        for m in molecules() { dict.add(m, basis: basis) }
        let h = Hyperparameters(basisSet: basis, radius: 0.75, gridInterval: 0.3, dim: 7, layerFunctional: layers,
                                hiddenHK: 6, layerHK: layers, operation: op, outputs: 2, environment: environment,
                                potentialFeatures: potentialFeatures)
        var model = try QDFModel(hyper: h, dictionary: dict, seed: 7)
        // Spread ζ so that the ζ gradients are not all alike.
        let z = model.layout["zeta.weight"]!
        for (n, i) in z.range.enumerated() { model.parameters[i] = 0.6 + 0.15 * Float(n % 5) }
        if environment != nil || potentialFeatures > 0 {
            // The environment's output and the potential input's weight start at zero (no
            // gradient reaches the environment's layers below it) and the gate at one: random
            // values instead, so that every tensor is checked.
            var rng = RandomGenerator(seed: 3)
            let names = (environment != nil ? ["environment.output.weight", "environment.gate.weight"] : [])
                + (potentialFeatures > 0 ? ["W_functional_potential.weight"] : [])
            for name in names {
                for i in model.layout[name]!.range { model.parameters[i] = Float(rng.nextUniform(-0.8, 0.8)) }
            }
        }
        let geoms = try molecules().map { try model.geometry($0, withPotential: true) }
        return (model, geoms)
    }

    func check(op: Readout, layers: Int, path: String, policy: Engine.Policy = .never, densityWeight: Float = 0,
               environment: EnvironmentShape? = nil, potentialFeatures: Int = 0, sample: PotentialSample? = nil) throws {
        var (model, geoms) = try Self.model(op, layers: layers, environment: environment, potentialFeatures: potentialFeatures)
        if densityWeight > 0 {
            // Targets for the first two molecules (the third has none): the model's own ρ
            // moved by ±30 % at random, far from ρ so that no step of the differences
            // crosses the kink of |ρ − q|, and scaled back to Σ q = N_e.
            var rng = RandomGenerator(seed: 5)
            for m in 0..<2 {
                let rho = Engine(model: model).orbitalFields([geoms[m]], parameters: model.parameters)[0].density
                var q = rho.map { $0 * (rng.nextIndex(2) == 0 ? 0.7 : 1.3) }
                let f = Float(geoms[m].electronCount) / q.reduce(0, +)
                q = q.map { $0 * f }
                geoms[m].densityTarget = q
            }
        }
        let engine = Engine(model: model)
        engine.firstLayerThroughBasis = policy
        var reference = DoubleReference(model)
        func loss() -> Double {
            path == "E" ? reference.lossE(geoms) : reference.lossV(geoms, densityWeight: Double(densityWeight), sample: sample)
        }
        var grad = [Float](repeating: 0, count: model.layout.totalCount)
        let engineLoss = path == "E" ? engine.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &grad)
                                     : engine.potentialLossAndGradient(geoms, parameters: model.parameters, gradient: &grad,
                                                                       densityWeight: densityWeight, sample: sample)
        if densityWeight > 0 {
            // The density term weighs enough that a wrong gradient of it would show.
            let without = reference.lossV(geoms, sample: sample), with = loss()
            #expect(with - without > 0.2 * without, "Loss_V \(without), with Loss_ρ \(with)")
        }
        // The forward passes agree first.
        #expect(abs(engineLoss - loss()) <= 1e-4 * abs(loss()), "\(path) loss: engine \(engineLoss), Float64 \(loss())")
        var rng = RandomGenerator(seed: 11)
        let groups = ParameterGroups(model.layout)
        let trained = Set(path == "E" ? groups.energy : groups.potential)
        var checked = 0
        let coefficientScale = Double(model.layout["coefficient.weight"]!.range.map { abs(grad[$0]) }.max() ?? 0)
        for (t, e) in model.layout.entries.enumerated() {
            let maxGrad = e.range.map { abs(grad[$0]) }.max() ?? 0
            if !trained.contains(t) {
                #expect(maxGrad == 0, "\(path): \(e.name) is not in this path but got gradient \(maxGrad)")
                continue
            }
            #expect(maxGrad > 0, "\(path): \(e.name) received no gradient")
            // Up to 6 random entries of each tensor.
            let picks = e.count <= 6 ? Array(e.range) : (0..<6).map { _ in e.offset + rng.nextIndex(e.count) }
            for i in picks {
                let x = reference.p[i]
                let h = 1e-5
                reference.p[i] = x + h; let lp = loss()
                reference.p[i] = x - h; let lm = loss()
                reference.p[i] = x
                let numeric = (lp - lm) / (2 * h)
                let analytic = Double(grad[i])
                // The orbital environment's gradients arrive through dC, whose Float32 rounding
                // is relative to the coefficient gradient's scale: that scale sets their floor.
                let floor = e.name.hasPrefix("environment.") ? max(Double(maxGrad), coefficientScale) : Double(maxGrad)
                let scale = max(abs(numeric), 1e-2 * floor)
                #expect(abs(analytic - numeric) <= 1e-3 * scale,
                        "\(path) \(op) \(e.name)[\(i - e.offset)]: analytic \(analytic), numeric \(numeric)")
                checked += 1
            }
        }
        #expect(checked >= 20)
    }

    @Test("Loss_E: ζ, coefficients, W_functional, W_property (sum readout)")
    func energySum() throws { try check(op: .sum, layers: 2, path: "E") }

    @Test("Loss_E with the first functional layer computed through the basis (sum and mean)")
    func energyFolded() throws {
        try check(op: .sum, layers: 2, path: "E", policy: .always)
        try check(op: .mean, layers: 1, path: "E", policy: .always)
    }

    @Test("Loss_V with one HK layer")
    func potentialOneLayer() throws { try check(op: .sum, layers: 1, path: "V") }

    @Test("Loss_V on a sampled grid (fraction 0.4; 0, 1 and 2 HK layers; with the density term)")
    func potentialSampled() throws {
        let sample = PotentialSample(fraction: 0.4, key: 20261207)
        try check(op: .sum, layers: 2, path: "V", sample: sample)
        try check(op: .sum, layers: 1, path: "V", sample: sample)
        try check(op: .sum, layers: 0, path: "V", sample: sample)
        try check(op: .sum, layers: 2, path: "V", densityWeight: 40, sample: sample)
    }

    @Test("Loss_E with mean readout and no hidden layers")
    func energyMean() throws { try check(op: .mean, layers: 0, path: "E") }

    @Test("Loss_E with mean readout, 3 layers")
    func energyMean3() throws { try check(op: .mean, layers: 3, path: "E") }

    @Test("Loss_V: ζ, coefficients, W_density, W_HK, W_potential")
    func potential() throws { try check(op: .sum, layers: 2, path: "V") }

    @Test("Loss_V with the density term Loss_ρ (two of three molecules with targets)")
    func potentialWithDensity() throws {
        try check(op: .sum, layers: 2, path: "V", densityWeight: 40)
        try check(op: .sum, layers: 0, path: "V", densityWeight: 60)
    }

    @Test("Loss_V with no HK hidden layers")
    func potentialShallow() throws { try check(op: .sum, layers: 0, path: "V") }

    /// Two layers, 5 features, 6 Gaussians; a 2 Å cutoff leaves some pairs of HCN and water
    /// outside it.
    static let environment = EnvironmentShape(layers: 2, features: 5, gaussians: 6, cutoff: 2)

    @Test("Loss_E through the orbital environment (§18), ψ formed and through the basis")
    func energyEnvironment() throws {
        try check(op: .sum, layers: 2, path: "E", environment: Self.environment)
        try check(op: .mean, layers: 1, path: "E", policy: .always, environment: Self.environment)
    }

    @Test("Loss_V through the orbital environment (§18)")
    func potentialEnvironment() throws {
        try check(op: .sum, layers: 1, path: "V", environment: Self.environment)
    }

    @Test("Loss_E through the potential input (§19), ψ formed and through the basis, with the environment too")
    func energyPotentialInput() throws {
        try check(op: .sum, layers: 2, path: "E", potentialFeatures: 5)
        try check(op: .mean, layers: 1, path: "E", policy: .always, potentialFeatures: 4)
        try check(op: .sum, layers: 2, path: "E", policy: .always, environment: Self.environment, potentialFeatures: 5)
    }
}
