import Foundation

// `qdf bench`: the machine's GEMM limit at the model's own shapes, and what training
// and inference achieve against it, measured side by side in one run.

/// The results of `Benchmark.run`: GEMM rates, training and inference throughput, and
/// inference time against molecule size. Times in seconds unless named otherwise.
package struct BenchmarkReport: Sendable {
    /// One measured sgemm shape: a `label`, C[m×n] = A[m×k]·op(B), and the rate summed over
    /// all concurrent copies in `gflops` (GFLOP/s).
    package struct GEMM: Sendable { public var label: String; public var m, n, k: Int; public var gflops: Double }
    /// Inference time for one molecule size: `molecules` molecules of `atoms` atoms each took
    /// `msPerMolecule` milliseconds per molecule (wall clock, after a warm-up).
    package struct Scaling: Sendable { public var atoms: Int; public var molecules: Int; public var msPerMolecule: Double }

    /// The BLAS library in use.
    package var blas: BLASInfo
    /// Active processor count; every GEMM shape runs this many copies at once.
    package var cores: Int
    /// The measured GEMM shapes, in order.
    package var gemm: [GEMM] = []
    /// The highest of the `gemm` rates (GFLOP/s): the machine's limit at the model's shapes.
    package var gemmLimit = 0.0
    /// Molecules in the timed training pass (one epoch, batches of 4, E and V steps).
    package var trainMolecules = 0
    /// Wall-clock seconds of the timed training pass.
    package var trainSeconds = 0.0
    /// GFLOPs (10⁹ floating-point operations) the BLAS counted during the training pass.
    package var trainGFLOPs = 0.0
    /// Molecules predicted in the timed inference pass.
    package var inferMolecules = 0
    /// Wall-clock seconds of the inference pass, reading and geometry included.
    package var inferSeconds = 0.0
    /// GFLOPs the BLAS counted during the inference pass.
    package var inferGFLOPs = 0.0
    /// Where the inference molecules came from: the file name, or "synthetic 15–29 atoms".
    package var inferSource = ""
    /// Where the training molecules came from: "given set" or "synthetic 3–14 atoms".
    package var trainSource = ""
    /// Inference time per molecule by atom count, in increasing atom count.
    package var scaling: [Scaling] = []
    /// Least-squares fit ms = a + b·atoms over the scaling points, and its R² (all zero
    /// when fewer than two sizes were measured).
    package var scalingFit: (intercept: Double, slope: Double, r2: Double) = (0, 0, 0)
    /// The process's peak resident set size at the end of the run, in MiB.
    package var peakResidentMiB = 0.0
    /// The canonical frame (docs/model.md §17) of each inference molecule, on one thread:
    /// microseconds per molecule (every distinct frame formed, as prediction does) and the
    /// mean number of distinct frames per molecule.
    package var frameMicroseconds = 0.0
    package var framesPerMolecule = 0.0
    /// Where the inference pass's time went: thread-seconds per phase (`PhaseTimer`), in
    /// GEMMs, and available (wall seconds × workers).
    package var inferPhases: [Phase: Double] = [:]
    package var inferGEMMSeconds = 0.0
    package var inferThreadSeconds = 0.0
    /// The training pass's thread-seconds in GEMMs, in its forward stages, and available.
    package var trainPhases: [Phase: Double] = [:]
    package var trainGEMMSeconds = 0.0
    package var trainThreadSeconds = 0.0

    /// Training throughput, molecules per second.
    package var trainMoleculesPerSecond: Double { Double(trainMolecules) / max(trainSeconds, 1e-9) }
    /// Training GEMM rate achieved, GFLOP/s (compare with `gemmLimit`).
    package var trainAchievedGFLOPS: Double { trainGFLOPs / max(trainSeconds, 1e-9) }
    /// Inference throughput, molecules per second.
    package var inferMoleculesPerSecond: Double { Double(inferMolecules) / max(inferSeconds, 1e-9) }
    /// Inference GEMM rate achieved, GFLOP/s (compare with `gemmLimit`).
    package var inferAchievedGFLOPS: Double { inferGFLOPs / max(inferSeconds, 1e-9) }
}

/// `qdf bench`: measurement helpers and the whole benchmark run.
package enum Benchmark {
    /// `count` deterministic QM9-like molecules (C, N, O chains with hydrogens, positions in
    /// ångström), each with an atom count drawn from `atoms` and one property, −4.5·atoms.
    package static func syntheticMolecules(count: Int, atoms: ClosedRange<Int>, seed: UInt64) -> [Molecule] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { n in
            let total = atoms.lowerBound + rng.nextIndex(atoms.count)
            let heavy = max(1, min(9, (total + 1) / 2))
            let hydrogens = max(0, total - heavy)
            var zs = [Int](), ps = [SIMD3<Double>]()
            var p = SIMD3<Double>(0, 0, 0)
            for a in 0..<heavy {
                zs.append([6, 6, 6, 7, 8][rng.nextIndex(5)])
                ps.append(p)
                let dir = SIMD3(1.0, rng.nextUniform(-0.8, 0.8), rng.nextUniform(-0.8, 0.8))
                p += 1.5 * dir / (dir * dir).sum().squareRoot()
                _ = a
            }
            for h in 0..<hydrogens {
                let base = ps[h % heavy]
                var v = SIMD3(rng.nextUniform(-1, 1), rng.nextUniform(-1, 1), rng.nextUniform(-1, 1))
                v /= max((v * v).sum().squareRoot(), 1e-3)
                zs.append(1)
                ps.append(base + (1.09 + 0.05 * Double(h / heavy)) * v + SIMD3(0, 0, 0.3 * Double(h / heavy)))
            }
            return Molecule(id: "synthetic_\(n)", atomicNumbers: zs, positions: ps, properties: [-4.5 * Double(total)])
        }
    }

    /// GFLOP/s of sgemm for C[m×n] = A[m×k]·op(B), `copies` independent GEMMs running
    /// at once on as many threads (qdf's molecule-parallel layout), for at least `seconds`
    /// (wall clock); the rates of the copies are summed.
    package static func gemmRate(m: Int, n: Int, k: Int, transB: Transpose = .transpose, copies: Int = 1,
                                seconds: Double = 0.6, compute: any ComputeBackend = defaultCompute) -> Double {
        let copies = max(1, copies)
        let rates = concurrentMap(copies) { w -> Double in
            var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
            var c = [Float](repeating: 0, count: m * n)
            var rng = RandomGenerator(seed: UInt64(1 + w))
            for i in 0..<(m * k) { a[i] = Float(rng.nextUnit()) }
            for i in 0..<(k * n) { b[i] = Float(rng.nextUnit()) }
            return a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                func run() { compute.gemm(.none, transB, m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                          ldb: transB == .none ? n : k, c: c.baseAddress!, ldc: n) }
                run(); run()
                var reps = 0
                let start = Date()
                while Date().timeIntervalSince(start) < seconds || reps < 3 { run(); reps += 1 }
                return 2.0 * Double(m * n * k) * Double(reps) / Date().timeIntervalSince(start) / 1e9
            }}}
        }
        return rates.reduce(0, +)
    }

    /// The GEMM shapes the model runs (functional/HK layers over a batch's grid points, the
    /// weight-gradient shape, and the evaluation batch), each on every core at once, measured
    /// on `compute`. One worker's share of a batch of 4 is 2 molecules ≈ 1350 grid points.
    package static func modelShapes(cores: Int, compute: any ComputeBackend = defaultCompute,
                                   seconds: Double = 0.6) -> [BenchmarkReport.GEMM] {
        let shapes: [(String, Int, Int, Int, Transpose)] = [
            ("layer, 2 molecules (1350×250·250×250ᵀ)", 1350, 250, 250, .transpose),
            ("weight gradient (250×1350·1350×250)", 250, 250, 1350, .none),
            ("layer, 32 molecules (21500×250·250×250ᵀ)", 21500, 250, 250, .transpose),
        ]
        return shapes.map { label, m, n, k, t in
            .init(label: "\(label) ×\(cores)", m: m, n: n, k: k,
                  gflops: gemmRate(m: m, n: n, k: k, transB: t, copies: cores, seconds: seconds, compute: compute))
        }
    }

    /// Every GEMM library of `GEMMLibrary.known` that loads, each measured at the model's
    /// shapes on every core (`modelShapes`), one after another in this process; for a library
    /// with bfloat16 GEMMs also the same shapes through `BF16Compute` (rounding included).
    package static func compareLibraries(cores: Int, seconds: Double = 0.6)
        -> [(info: BLASInfo, gemm: [BenchmarkReport.GEMM], bf16: [BenchmarkReport.GEMM]?)] {
        GEMMLibrary.known.compactMap { lib in
            let blas = BLAS(candidates: [lib], choice: "qdf bench --compare-blas")
            guard blas.info.name == lib.name else { return nil }
            let bf16 = (try? BF16Compute(blas: blas)).map { modelShapes(cores: cores, compute: $0, seconds: seconds) }
            return (blas.info, modelShapes(cores: cores, compute: blas, seconds: seconds), bf16)
        }
    }

    /// The process's peak resident set size so far, in MiB (`getrusage` ru_maxrss, KiB on Linux).
    package static func peakResidentMiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    /// Runs the benchmark. Training uses the reference hyperparameters (dim 250, 3 + 3
    /// layers, batch 4); `trainMolecules` from `trainSet` (or synthetic 3–14-atom molecules),
    /// inference over `inferFile` streamed from disk (or synthetic 15–29-atom molecules).
    /// `inferFile` names the inference molecules and `openInfer` opens a reader over them
    /// (a new one each call); without them synthetic molecules are used. `progress` gets a
    /// line per phase. Throws `QDFError` from reading the inference file (with file/line).
    /// `trainMolecules` must be ≥ 1.
    package static func run(trainSet: [Molecule]?, trainMolecules: Int, inferFile: String?,
                           openInfer: (() throws -> MoleculeReader)? = nil, inferMolecules: Int,
                           trainWorkers: Int = availableCores,
                           inferWorkers: Int = availableCores,
                           progress: (String) -> Void = { _ in }) throws -> BenchmarkReport {
        var r = BenchmarkReport(blas: BLAS.shared.info, cores: availableCores)
        // 1. The limit: sgemm at the shapes the model runs.
        progress("sgemm at the model's shapes")
        r.gemm = modelShapes(cores: r.cores)
        r.gemmLimit = r.gemm.map(\.gflops).max() ?? 0

        // 2. Training.
        progress("training")
        let train = Array((trainSet ?? syntheticMolecules(count: trainMolecules, atoms: 3...14, seed: 11)).prefix(trainMolecules))
        r.trainSource = trainSet == nil ? "synthetic 3–14 atoms" : "given set"
        let basis = Hyperparameters.reference.basisSet
        var dict = OrbitalDictionary()
        for m in train { dict.add(m, basis: basis) }
        for z in [1, 6, 7, 8, 9] { dict.add(Molecule(id: "", atomicNumbers: [z], positions: [.zero]), basis: basis) }
        var model = try QDFModel(hyper: Hyperparameters(basisSet: basis, outputs: train[0].properties.count), dictionary: dict)
        let trainTimer = PhaseTimer()
        let stepper = TrainingStep(architecture: model.architecture, workers: trainWorkers,
                                   compute: TimedCompute(timer: trainTimer))
        let adam = Adam(layout: model.layout, learningRate: 1e-4)
        let geoms = try train.map { try model.geometry($0, withPotential: true) }
        // Warm-up (buffers grow to their size), then the timed pass.
        _ = stepper.step(Array(geoms.prefix(4)), parameters: &model.parameters, adam: adam, hkMap: true)
        trainTimer.reset()
        let f0 = BLAS.shared.flopCount
        let t0 = Date()
        var i = 0
        while i < geoms.count {
            _ = stepper.step(Array(geoms[i..<min(i + 4, geoms.count)]), parameters: &model.parameters, adam: adam, hkMap: true)
            i += 4
        }
        r.trainSeconds = Date().timeIntervalSince(t0)
        r.trainGFLOPs = Double(BLAS.shared.flopCount - f0) / 1e9
        r.trainMolecules = geoms.count
        r.trainPhases = trainTimer.phases
        r.trainGEMMSeconds = trainTimer.gemmSeconds
        r.trainThreadSeconds = r.trainSeconds * Double(stepper.workers)

        // 3. Inference (reading and geometry included), with the same model.
        progress("inference")
        let inferTimer = PhaseTimer()
        let predictor = Predictor(model: model, batchSize: Predictor.defaultBatchSize, workers: inferWorkers, compute: TimedCompute(timer: inferTimer))
        let f1 = BLAS.shared.flopCount
        let t1 = Date()
        if let file = inferFile, let open = openInfer {
            r.inferSource = file
            r.inferMolecules = try predictor.run(readers: [try open()], skipUnknown: true) { _ in }.molecules
        } else {
            r.inferSource = "synthetic 15–29 atoms"
            let mols = syntheticMolecules(count: inferMolecules, atoms: 15...29, seed: 12)
            r.inferMolecules = try predictor.predict(mols).count
        }
        r.inferSeconds = Date().timeIntervalSince(t1)
        r.inferGFLOPs = Double(BLAS.shared.flopCount - f1) / 1e9
        r.inferPhases = inferTimer.phases
        r.inferGEMMSeconds = inferTimer.gemmSeconds
        r.inferThreadSeconds = r.inferSeconds * Double(max(1, inferWorkers))

        // 3b. The canonical frame of each inference molecule, one thread, repeated to ≥ 0.2 s.
        progress("canonical frame")
        let frameSet = try openInfer.map { try $0().readAll() } ?? syntheticMolecules(count: inferMolecules, atoms: 15...29, seed: 12)
        if !frameSet.isEmpty {
            var formed = 0, rounds = 0
            let t = Date()
            repeat {
                for m in frameSet { formed += MoleculeFrame.frames(of: m).count }
                rounds += 1
            } while Date().timeIntervalSince(t) < 0.2
            r.frameMicroseconds = 1e6 * Date().timeIntervalSince(t) / Double(rounds * frameSet.count)
            r.framesPerMolecule = Double(formed) / Double(rounds * frameSet.count)
        }

        // 4. Inference time against molecule size: the --infer file's molecules grouped by
        //    atom count (sizes with at least 24 molecules), or synthetic ones of 15–29 atoms.
        progress("scaling with molecule size")
        var groups = [Int: [Molecule]]()
        if let open = openInfer {
            for m in try open().readAll() where model.dictionary.refusal(m, basis: model.basis) == nil {
                groups[m.atomCount, default: []].append(m)
            }
            groups = groups.filter { $0.value.count >= 24 }
        } else {
            for atoms in stride(from: 15, through: 29, by: 2) {
                groups[atoms] = syntheticMolecules(count: 64, atoms: atoms...atoms, seed: UInt64(100 + atoms))
            }
        }
        for atoms in groups.keys.sorted() {
            let mols = Array(groups[atoms]!.prefix(128))
            _ = try predictor.predict(Array(mols.prefix(16)))
            let t = Date()
            _ = try predictor.predict(mols)
            r.scaling.append(.init(atoms: atoms, molecules: mols.count, msPerMolecule: 1000 * Date().timeIntervalSince(t) / Double(mols.count)))
        }
        guard r.scaling.count >= 2 else { r.peakResidentMiB = peakResidentMiB(); return r }
        let xs = r.scaling.map { Double($0.atoms) }, ys = r.scaling.map(\.msPerMolecule)
        let n = Double(xs.count), mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        let sxy = zip(xs, ys).map { ($0 - mx) * ($1 - my) }.reduce(0, +), sxx = xs.map { ($0 - mx) * ($0 - mx) }.reduce(0, +)
        let slope = sxy / sxx, intercept = my - slope * mx
        let ssr = zip(xs, ys).map { pow($1 - (intercept + slope * $0), 2) }.reduce(0, +)
        let sst = ys.map { pow($0 - my, 2) }.reduce(0, +)
        r.scalingFit = (intercept, slope, 1 - ssr / max(sst, 1e-12))
        r.peakResidentMiB = peakResidentMiB()
        return r
    }
}
