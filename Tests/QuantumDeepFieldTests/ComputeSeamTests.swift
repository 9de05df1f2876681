import Foundation
import Synchronization
import Testing
import QuantumDeepField

/// A backend that computes with the plain triple-loop GEMM: the independent computation
/// the BLAS path is checked against.
private struct PortableGEMM: ComputeBackend {
    var name: String { "portable" }
    func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        BLAS.portableSgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c, ldc: ldc)
    }
}

/// A backend that forwards to BLAS and counts what goes through the seam.
private final class CountingBackend: ComputeBackend {
    let gemms = Atomic<Int>(0), combines = Atomic<Int>(0)
    var name: String { "counting" }
    func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        gemms.wrappingAdd(1, ordering: .relaxed)
        BLAS.shared.sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc)
    }
    func combineGradients(_ parts: [UnsafeMutablePointer<Float>], weights: [Float], count: Int) {
        combines.wrappingAdd(1, ordering: .relaxed)
        BLAS.shared.combineGradients(parts, weights: weights, count: count)
    }
}

@Suite("Compute seam and scratch memory")
struct ComputeSeamTests {
    @Test("Every GEMM library that loads (openblas, scipy-openblas, blis, mkl) computes what the portable GEMM does, in all four transposes and with β")
    func everyLibraryAgreesWithPortable() throws {
        var rng = RandomGenerator(seed: 3)
        let (m, n, k) = (37, 29, 53)
        let a = (0..<(m * k)).map { _ in Float(rng.nextUniform(-1, 1)) }, b = (0..<(k * n)).map { _ in Float(rng.nextUniform(-1, 1)) }
        let c0 = (0..<(m * n)).map { _ in Float(rng.nextUniform(-1, 1)) }
        var loaded = [String]()
        for lib in GEMMLibrary.known {
            let blas = BLAS(candidates: [lib], choice: "test")
            guard blas.info.name == lib.name else { continue }
            loaded.append(lib.name)
            #expect(blas.threads == 1 || blas.userSetThreads, "\(lib.name) runs \(blas.threads) threads")
            if lib.name == "mkl" { #expect(blas.info.config.contains("Math Kernel Library"), "\(blas.info.config)") }
            for ta in [Transpose.none, .transpose] {
                for tb in [Transpose.none, .transpose] {
                    for beta: Float in [0, 1, 0.5] {
                        var want = c0, got = c0
                        let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
                        BLAS.portableSgemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb,
                                           beta: beta, c: &want, ldc: n)
                        blas.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &got, ldc: n)
                        let worst = zip(want, got).map { abs($0 - $1) }.max()!
                        #expect(worst < 1e-5, "\(lib.name) \(ta) \(tb) β \(beta): max difference \(worst)")
                    }
                }
            }
        }
        // Debian's OpenBLAS is what CI installs; the others when scripts/setup --blas ran.
        #expect(loaded.contains("openblas"), "OpenBLAS (libopenblas0) did not load")
        print("GEMM libraries checked against the portable GEMM: \(loaded.joined(separator: ", "))")
        // A library that does not exist: the portable GEMM, and the choice says so.
        let none = BLAS(candidates: [GEMMLibrary(name: "x", files: ["libdoes-not-exist.so"], prefix: "")], choice: "test")
        #expect(none.info.name == "builtin" && none.info.choice.contains("none could be loaded"))
    }

    @Test("Workers follow the CPUs the process may use (taskset), not the machine's count",
          .enabled(if: InterruptionTests.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset"),
                   "needs the qdf executable and taskset"))
    func workersFollowAffinity() throws {
        #expect(availableCores >= 1 && availableCores <= ProcessInfo.processInfo.activeProcessorCount)
        #expect(defaultWorkers == min(availableCores, 8))
        let text = try runProcess("/usr/bin/taskset", ["-c", "0", InterruptionTests.qdf, "info"]).stdout
        #expect(text.contains("parallelism: 1 molecule-parallel worker "), "\(text)")
    }

    @Test("A timed backend gives the same predictions and accounts for the stages and the GEMMs")
    func timedCompute() throws {
        let (model, _) = try GradientTests.model(.sum, layers: 2)
        let mols = (0..<12).map { GradientTests.molecules()[$0 % 3] }
        let plain = try Predictor(model: model, batchSize: 4, workers: 2).predict(mols).map(\.predicted)
        let timed = TimedCompute()
        let start = Date()
        let got = try Predictor(model: model, batchSize: 4, workers: 2, compute: timed).predict(mols).map(\.predicted)
        let wall = Date().timeIntervalSince(start)
        #expect(got == plain)
        let phases = timed.timer.phases
        for p in [Phase.geometry, .basis, .coefficients, .orbitals, .layers, .readout] {
            #expect((phases[p] ?? 0) > 0, "\(p) was not timed")
        }
        let stages = phases.values.reduce(0, +)
        #expect(stages <= 2 * wall + 1e-3, "stages \(stages) s in \(wall) s on 2 workers")
        #expect(timed.timer.gemmSeconds > 0 && timed.timer.gemmSeconds <= stages)
        timed.timer.reset()
        #expect(timed.timer.gemmSeconds == 0 && timed.timer.phases.values.allSatisfy { $0 == 0 })
    }

    @Test("The engine on the portable GEMM gives BLAS's predictions and gradients")
    func portableAgainstBLAS() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        for policy in [Engine.Policy.never, .always] {
            let fast = Engine(model: model), plain = Engine(model: model, compute: PortableGEMM())
            fast.firstLayerThroughBasis = policy; plain.firstLayerThroughBasis = policy
            let a = fast.predict(geoms, parameters: model.parameters), b = plain.predict(geoms, parameters: model.parameters)
            for (x, y) in zip(a, b) { for q in x.indices { #expect(abs(x[q] - y[q]) <= 1e-5 * max(1, abs(y[q]))) } }
            var ga = [Float](repeating: 0, count: model.layout.totalCount), gb = ga
            _ = fast.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &ga)
            _ = plain.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &gb)
            _ = fast.potentialLossAndGradient(geoms, parameters: model.parameters, gradient: &ga)
            _ = plain.potentialLossAndGradient(geoms, parameters: model.parameters, gradient: &gb)
            let scale = gb.map(abs).max() ?? 0
            let diff = zip(ga, gb).map { abs($0 - $1) }.max() ?? 0
            #expect(diff <= 1e-5 * scale, "policy \(policy): max gradient difference \(diff), largest \(scale)")
        }
    }

    @Test("A training step's GEMMs and gradient combination go through the backend it was given")
    func trainingUsesTheSeam() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let counting = CountingBackend()
        var a = model, b = model
        let seam = TrainingStep(architecture: model.architecture, workers: 2, compute: counting)
        let plain = TrainingStep(architecture: model.architecture, workers: 2)
        let adamA = Adam(layout: model.layout, learningRate: 1e-3), adamB = Adam(layout: model.layout, learningRate: 1e-3)
        let la = seam.step(geoms, parameters: &a.parameters, adam: adamA, hkMap: true)
        let lb = plain.step(geoms, parameters: &b.parameters, adam: adamB, hkMap: true)
        #expect(counting.combines.load(ordering: .relaxed) == 2, "one combination for the E step, one for the V step")
        #expect(counting.gemms.load(ordering: .relaxed) > 0)
        // Same operations in the same order: bit-identical.
        #expect(la == lb && a.parameters == b.parameters)
        // An empty batch changes nothing: no NaN loss, no Adam step.
        let (before, steps) = (a.parameters, adamA.steps)
        let empty = plain.step([], parameters: &a.parameters, adam: adamA, hkMap: true)
        #expect(empty == (0, 0) && a.parameters == before && adamA.steps == steps)
    }

    @Test("The local gradient combination is the share-weighted sum, in order")
    func combination() {
        var g0: [Float] = [1, 2, 3], g1: [Float] = [10, 20, 30], g2: [Float] = [-4, 0, 4]
        g0.withUnsafeMutableBufferPointer { p0 in g1.withUnsafeMutableBufferPointer { p1 in g2.withUnsafeMutableBufferPointer { p2 in
            BLAS.shared.combineGradients([p0.baseAddress!, p1.baseAddress!, p2.baseAddress!], weights: [0.5, 0.25, 0.25], count: 3)
        }}}
        let expected: [Float] = [0.5 + 2.5 - 1, 1 + 5 + 0, 1.5 + 7.5 + 1]  // 0.5·g0 + 0.25·g1 + 0.25·g2
        #expect(g0 == expected)
    }

    @Test("After the first batch of a shape the engine's scratch memory no longer grows")
    func scratchSettles() throws {
        let (model, geoms) = try GradientTests.model(.mean, layers: 2)
        let engine = Engine(model: model)
        var grad = [Float](repeating: 0, count: model.layout.totalCount)
        func pass() {
            _ = engine.predict(geoms, parameters: model.parameters)
            _ = engine.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &grad)
            _ = engine.potentialLossAndGradient(geoms, parameters: model.parameters, gradient: &grad)
        }
        pass(); pass()
        let settled = engine.scratchBytes
        for _ in 0..<3 { pass() }
        #expect(engine.scratchBytes == settled)
    }

    @Test("The scratch arena hands out aligned, disjoint regions and grows to the demand at reset")
    func arena() {
        let arena = ScratchArena(bytes: 4096)
        let a = arena.floats(1000), b = arena.doubles(1000)   // 4 KB + 8 KB: the second overflows
        #expect(Int(bitPattern: a) % 64 == 0 && Int(bitPattern: b) % 64 == 0)
        for i in 0..<1000 { a[i] = Float(i); b[i] = -Double(i) }
        #expect(a[999] == 999 && b[999] == -999)
        arena.reset()
        #expect(arena.blockBytes >= 12_000)
        let c = arena.floats(1000), d = arena.doubles(1000)
        #expect(UnsafeRawPointer(d) >= UnsafeRawPointer(c + 1000))
    }
}
