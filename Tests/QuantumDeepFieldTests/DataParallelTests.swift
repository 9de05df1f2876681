import Foundation
import Testing
import QuantumDeepField

/// An in-process `ProcessGroup`: ranks are threads exchanging messages through FIFO
/// mailboxes (one per ordered pair of ranks). Every rank makes the same sequence of calls,
/// as with MPI, so the FIFO order matches sends to receives.
final class ThreadHub: @unchecked Sendable {
    // Invariant: `boxes` is touched only under `condition`.
    let size: Int
    private let condition = NSCondition()
    private var boxes: [[[UInt8]]]
    init(size: Int) {
        self.size = size
        boxes = Array(repeating: [], count: size * size)
    }
    func post(_ bytes: [UInt8], from: Int, to: Int) {
        condition.lock(); boxes[from * size + to].append(bytes); condition.broadcast(); condition.unlock()
    }
    func take(from: Int, to: Int) -> [UInt8] {
        condition.lock(); defer { condition.unlock() }
        while boxes[from * size + to].isEmpty { condition.wait() }
        return boxes[from * size + to].removeFirst()
    }

    /// Runs `body(group)` for every rank on its own thread; returns the results by rank.
    static func run<T: Sendable>(workers: [Int], _ body: @escaping @Sendable (ThreadRank) throws -> T) throws -> [T] {
        let hub = ThreadHub(size: workers.count)
        let results = ResultBox<T>(count: workers.count)
        let done = DispatchSemaphore(value: 0)
        for r in 0..<workers.count {
            let t = Thread {
                results.set(r, Result { try body(ThreadRank(hub: hub, rank: r, workersPerRank: workers)) })
                done.signal()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        for _ in workers { done.wait() }
        return try results.values()
    }
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Invariant: `slots` is touched only under `lock`.
    private let lock = NSLock()
    private var slots: [Result<T, any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, any Error>) { lock.withLock { slots[i] = r } }
    func values() throws -> [T] { try lock.withLock { try slots.map { try $0!.get() } } }
}

final class ThreadRank: ProcessGroup, @unchecked Sendable {
    let hub: ThreadHub
    let rank: Int
    let workersPerRank: [Int]
    var size: Int { hub.size }
    init(hub: ThreadHub, rank: Int, workersPerRank: [Int]) {
        self.hub = hub; self.rank = rank; self.workersPerRank = workersPerRank
    }
    func send(_ data: UnsafeRawBufferPointer, to peer: Int) { hub.post(Array(data), from: rank, to: peer) }
    func receive(_ data: UnsafeMutableRawBufferPointer, from peer: Int) {
        let bytes = hub.take(from: peer, to: rank)
        precondition(bytes.count == data.count, "message size")
        bytes.withUnsafeBytes { data.copyMemory(from: $0) }
    }
    func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int) {
        if rank == root { for r in 0..<size where r != root { send(UnsafeRawBufferPointer(data), to: r) } }
        else { receive(data, from: root) }
    }
    func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        let bytes = UnsafeMutableRawBufferPointer(values)
        if rank == 0 {
            var other = [Double](repeating: 0, count: values.count)
            for r in 1..<size {
                other.withUnsafeMutableBytes { receive($0, from: r) }
                for i in 0..<values.count { values[i] += other[i] }
            }
        } else {
            send(UnsafeRawBufferPointer(bytes), to: 0)
        }
        broadcast(bytes, root: 0)
    }
}

/// Data parallelism (Training/DataParallel.swift) without MPI: ranks as threads.
@Suite("Data parallelism")
struct DataParallelTests {
    @Test("Share layout: the cut of one process with all ranks' workers, owners contiguous")
    func layout() {
        let l = ShareLayout(count: 7, shares: 4, workersPerRank: [1, 2, 1])
        #expect((0..<4).map { l.molecules(ofShare: $0) } == [0..<1, 1..<3, 3..<5, 5..<7])
        #expect(l.shares(ofRank: 1) == 1..<3 && l.molecules(ofRank: 1) == 1..<5 && l.lastOwner == 2)
        let small = ShareLayout(count: 2, shares: 2, workersPerRank: [2, 1, 3])
        #expect(small.shares(ofRank: 1).isEmpty && small.molecules(ofRank: 2).isEmpty && small.lastOwner == 0)
    }

    @Test("Gradients combined across ranks in share order equal one process's combination, bit for bit, on every rank",
          arguments: [[1, 1], [2, 1], [1, 2, 1], [1, 1, 1, 1], [3]])
    func orderedCombination(workers: [Int]) throws {
        let S = workers.reduce(0, +), count = 5003
        var rng = RandomGenerator(seed: 11)
        let parts: [[Float]] = (0..<S).map { _ in (0..<count).map { _ in Float(rng.nextUniform(-1, 1)) * 1e-3 } }
        let weights: [Float] = (0..<S).map { Float(1 + $0) / Float(S * (S + 1) / 2) }
        var single = parts
        withPointers(&single) { BLAS.shared.combineGradients($0, weights: weights, count: count) }
        let layout = ShareLayout(count: S, shares: S, workersPerRank: workers)
        let results = try ThreadHub.run(workers: workers) { g -> [Float] in
            let mine = layout.shares(ofRank: g.rank)
            var local = mine.map { parts[$0] }
            var buffer = [Float](repeating: 0, count: count)
            return withPointers(&local) { p in
                buffer.withUnsafeMutableBufferPointer { b in
                    let out = combineInShareOrder(group: g, compute: BLAS.shared, parts: p, weights: mine.map { weights[$0] },
                                                  count: count, lastOwner: layout.lastOwner, combine: S > 1,
                                                  buffer: b.baseAddress!, chunk: 997)
                    return Array(UnsafeBufferPointer(start: out, count: count))
                }
            }
        }
        for (r, v) in results.enumerated() {
            let differing = zip(v, single[0]).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(v.count == count && differing == 0, "rank \(r): \(differing) of \(count) values differ")
        }
    }

    /// `body` on pointers to copies of `arrays`, copied back afterwards.
    func withPointers<T>(_ arrays: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>]) -> T) -> T {
        let pointers = arrays.map { a -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, a.count))
            p.initialize(from: a, count: a.count)
            return p
        }
        defer { pointers.forEach { $0.deallocate() } }
        let result = body(pointers)
        for i in arrays.indices { arrays[i] = Array(UnsafeBufferPointer(start: pointers[i], count: arrays[i].count)) }
        return result
    }

    @Test("Training steps on 2 and 3 ranks equal one process with as many workers, bit for bit",
          arguments: [[1, 1], [2, 1], [1, 1, 1]])
    func trainingSteps(workers: [Int]) throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in FastPathTests.molecules() { dict.add(m, basis: basis) }
        let h = Hyperparameters(basisSet: basis, dim: 32, layerFunctional: 2, hiddenHK: 24, layerHK: 2)
        let model = try QDFModel(hyper: h, dictionary: dict, seed: 4)
        let geoms = try FastPathTests.molecules().map { try model.geometry($0, withPotential: true) }
        let S = workers.reduce(0, +)
        let batches = [Array(geoms[0..<4]), Array(geoms[1..<6]), [geoms[2]], Array(geoms[3..<5])]
        var single = model
        let step = TrainingStep(architecture: model.architecture, workers: S)
        let adam = Adam(layout: model.layout, learningRate: 1e-3)
        var singleLosses = [Double]()
        for b in batches {
            let (e, v) = step.step(b, parameters: &single.parameters, adam: adam, hkMap: true)
            singleLosses += [e, v]
        }
        let results = try ThreadHub.run(workers: workers) { g -> ([Float], [Double]) in
            var m = model
            let step = TrainingStep(architecture: model.architecture, workers: workers[g.rank], group: g)
            let adam = Adam(layout: model.layout, learningRate: 1e-3)
            var losses = [Double]()
            for b in batches {
                let mine = step.layout(batchCount: b.count).molecules(ofRank: g.rank)
                let (e, v) = step.step(local: Array(b[mine]), fieldCounts: b.map(\.fieldCount), parameters: &m.parameters,
                                       adam: adam, hkMap: true)
                losses += [e, v]
            }
            return (m.parameters, losses)
        }
        for (r, (p, l)) in results.enumerated() {
            #expect(p == single.parameters, "rank \(r): parameters")
            #expect(l == singleLosses, "rank \(r): losses")
        }
    }

    @Test("A trainer on 2 ranks writes the run of one process with 2 workers; resumed on 1 rank it still matches")
    func trainerOnRanks() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let options = try TrainingTests.smallOptions(epochs: 4)
        let single = try Trainer(dataset: data, options: options, runDirectory: dir.file("single"), workers: 2)
        _ = try single.train()
        // Two ranks, stopped after 7 batches (the stop decided on rank 1 only, agreed by all).
        let runPath = dir.file("ranks")
        let outcomes = try ThreadHub.run(workers: [1, 1]) { g -> String in
            let t = try Trainer(dataset: data, options: options, runDirectory: runPath, workers: 1, group: g)
            var batches = 0
            return "\(try t.train(shouldStop: { batches += 1; return g.anyTrue(g.rank == 1 && batches >= 9) }))"
        }
        #expect(outcomes == ["interrupted(epoch: 1, batch: 2)", "interrupted(epoch: 1, batch: 2)"], "\(outcomes)")
        let resumed = try Trainer.resume(runDirectory: dir.file("ranks"), workers: 2)
        #expect(try resumed.train() == .finished)
        let a = try QDFModel.load(path: dir.file("single/model.safetensors"))
        let b = try QDFModel.load(path: dir.file("ranks/model.safetensors"))
        #expect(a.parameters == b.parameters)
        #expect(single.records.map(\.maeTest) == resumed.records.map(\.maeTest))
        #expect(try String(contentsOfFile: dir.file("single/predictions_test.tsv"), encoding: .utf8)
                == String(contentsOfFile: dir.file("ranks/predictions_test.tsv"), encoding: .utf8))
    }

    @Test("Sharded prediction on ranks equals one process with all their workers, value for value, in input order (input and canonical frame)",
          arguments: [[1, 1], [2, 1]], [FrameKind.input, .canonical])
    func shardedPrediction(workers: [Int], frame: FrameKind) throws {
        let dir = try TemporaryDirectory()
        let folder = try TrainingTests.writeDataset(dir)
        let data = try Dataset.load(directory: folder)
        let options = try TrainingTests.smallOptions(epochs: 1)
        var hyper = options.hyper
        hyper.outputs = 1
        hyper.frame = frame
        let model = try QDFModel(hyper: hyper, dictionary: data.orbitalDictionary(basis: hyper.basisSet), seed: 3)
        let sizes = data.train.map { LargeMolecule.regularValues($0, model: model) }.sorted()
        let threshold = sizes[sizes.count - 4]  // the 3 largest molecules go through LargeMolecule
        let single = Predictor(model: model, batchSize: 2, workers: workers.reduce(0, +))
        single.largeMoleculeValues = threshold
        var expected = [(String, [Float])]()
        _ = try single.run(readers: [try QDFTextReader(path: folder + "/train.txt")], skipUnknown: false) {
            expected.append(($0.id, $0.predicted))
        }
        let got = try ThreadHub.run(workers: workers) { g -> ([String], Int) in
            let p = Predictor(model: model, batchSize: 2, workers: workers[g.rank])
            p.largeMoleculeValues = threshold
            p.group = g
            var rows = [String]()
            let summary = try p.run(readers: [try QDFTextReader(path: folder + "/train.txt")], skipUnknown: false) {
                rows.append("\($0.id) \($0.predicted)")
            }
            return (rows, summary.molecules)
        }
        #expect(got[0].0 == expected.map { "\($0.0) \($0.1)" } && got[0].1 == 24)
        #expect(got[1...].allSatisfy { $0.0.isEmpty && $0.1 == 0 })
    }

    @Test("A failure on one rank reaches every rank (no rank waits in a collective)")
    func agreement() throws {
        let messages = try ThreadHub.run(workers: [1, 1, 1]) { g -> String in
            do {
                _ = try g.agree("load the data set") { () -> Int in
                    if g.rank == 2 { throw QDFError("boom", file: "train.txt", line: 3) }
                    return 1
                }
                return "no error"
            } catch let e as QDFError { return e.description }
        }
        #expect(messages[2].contains("boom") && messages[0].contains("rank 2 failed to load the data set"), "\(messages)")
        let root = try ThreadHub.run(workers: [1, 1]) { g -> String in
            do { try g.onRoot("write the checkpoint") { throw QDFError("disk full", file: "state.safetensors") }; return "ok" }
            catch let e as QDFError { return e.description }
        }
        #expect(root[0].contains("disk full") && root[1].contains("rank 0 could not write the checkpoint"), "\(root)")
    }
}
