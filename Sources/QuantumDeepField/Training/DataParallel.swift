import Foundation

// Data parallelism across processes (docs/distributed.md). The core knows only the
// `ProcessGroup` protocol: point-to-point messages, a broadcast and a sum; the MPI
// implementation lives in the QDFDistributed target and loads libmpi at run time.
//
// Every global batch is cut into n shares exactly as a single process with S workers
// cuts it (S = the workers of all ranks together, n = min(S, batch size); share s holds
// molecules ⌊count·s/n⌋ ..< ⌊count·(s+1)/n⌋). Rank r owns the global shares
// [Σ_{r'<r} W_r', Σ_{r'≤r} W_r') and runs one engine per owned share, as a single
// process runs one per worker. The shares' gradients are then combined in share order
// 0, 1, …, n−1 by a pipelined chain: rank 0 combines its shares (g ← f₀g₀ + f₁g₁ …), sends
// the prefix chunk by chunk to rank 1, which adds its shares in order and passes it on; the
// last owner broadcasts the result. Each element therefore goes through the same
// floating-point operations, in the same order, as `ComputeBackend.combineGradients` in one
// process with S workers: the gradient, hence every Adam step and the final parameters,
// are bit-identical to that run, and identical on every rank. Losses and predictions are
// exchanged exactly (a sum in which every slot has one non-zero term is exact).

/// A group of processes working on one job (an MPI communicator, typically): the few
/// collective operations qdf's data parallelism is built on. Every rank must make the same
/// sequence of calls. Implementations end the process (with a message) when a peer fails
/// or stops answering, rather than return an error: a collective cannot be half done.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, 0 ..< size. Rank 0 reads and writes the files.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// The engines (molecule-parallel workers) of every rank, indexed by rank; the same
    /// array on every rank.
    var workersPerRank: [Int] { get }
    /// Sends `data` to `rank` (blocking until the buffer may be reused).
    func send(_ data: UnsafeRawBufferPointer, to rank: Int)
    /// Receives exactly `data.count` bytes from `rank` into `data`.
    func receive(_ data: UnsafeMutableRawBufferPointer, from rank: Int)
    /// Copies `root`'s bytes into `data` on every other rank (all pass the same count).
    func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int)
    /// Element-wise sum over all ranks, in place; every rank gets the same values.
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
}

extension ProcessGroup {
    /// Element-wise sum of `values` over all ranks.
    public func sum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { sum($0) }
    }

    /// True on every rank when `flag` is true on any rank.
    public func anyTrue(_ flag: Bool) -> Bool {
        var v = [flag ? 1.0 : 0.0]
        sum(&v)
        return v[0] > 0
    }

    /// `root`'s bytes on every rank (its length is broadcast first).
    public func broadcast(_ data: Data, root: Int = 0) -> Data {
        var length = [Double(data.count)]
        length.withUnsafeMutableBytes { broadcast($0, root: root) }
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length[0]))
        if !bytes.isEmpty { bytes.withUnsafeMutableBytes { broadcast($0, root: root) } }
        return Data(bytes)
    }

    /// Runs `body` on rank 0 only and tells every rank whether it succeeded: rank 0 rethrows
    /// its error, the others throw a `QDFError` saying rank 0 could not `what`.
    public func onRoot(_ what: String, _ body: () throws -> Void) throws {
        var failure: (any Error)? = nil
        if rank == 0 { do { try body() } catch { failure = error } }
        var flag = [failure == nil ? 0.0 : 1.0]
        flag.withUnsafeMutableBytes { broadcast($0, root: 0) }
        if let e = failure { throw e }
        if flag[0] != 0 { throw QDFError("rank 0 could not \(what) (see its message)") }
    }

    /// Runs `body` on every rank; if it throws on any rank, every rank throws (the failing
    /// ones their own error, the others a `QDFError` naming the first failing rank), so no
    /// rank goes on into a collective the others will never join.
    public func agree<T>(_ what: String, _ body: () throws -> T) throws -> T {
        var result: Result<T, any Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        var failed = [Double](repeating: 0, count: size)
        if case .failure = result { failed[rank] = 1 }
        sum(&failed)
        if case .failure(let e) = result { throw e }
        if let first = failed.firstIndex(where: { $0 != 0 }) {
            throw QDFError("rank \(first) failed to \(what) (see its message)")
        }
        return try result.get()
    }
}

/// How a batch of `count` molecules is cut into `shares` contiguous shares and which rank
/// owns which (see the top of this file). The same on every rank.
package struct ShareLayout: Sendable, Equatable {
    /// Molecules in the batch.
    package let count: Int
    /// n, the number of shares (≥ 1).
    package let shares: Int
    /// Workers of each rank (each ≥ 1): rank r owns global share slots
    /// [Σ_{r'<r} W_r', Σ_{r'≤r} W_r').
    package let workersPerRank: [Int]

    /// A layout of `count` molecules in `shares` shares over ranks with these workers.
    package init(count: Int, shares: Int, workersPerRank: [Int]) {
        precondition(shares >= 1 && workersPerRank.allSatisfy { $0 >= 1 }, "share layout")
        self.count = count
        self.shares = shares
        self.workersPerRank = workersPerRank
    }

    /// The molecules of share s: ⌊count·s/n⌋ ..< ⌊count·(s+1)/n⌋.
    package func molecules(ofShare s: Int) -> Range<Int> {
        Self.molecules(ofShare: s, count: count, shares: shares)
    }

    /// Share s of `count` items cut into `shares` contiguous shares: ⌊count·s/shares⌋ ..<
    /// ⌊count·(s+1)/shares⌋ (the cut every molecule-parallel loop of qdf makes).
    package static func molecules(ofShare s: Int, count: Int, shares: Int) -> Range<Int> {
        (count * s / shares)..<(count * (s + 1) / shares)
    }

    /// The molecules each rank computes, counted, indexed by rank.
    package var moleculesPerRank: [Int] { workersPerRank.indices.map { molecules(ofRank: $0).count } }

    /// The global shares rank r owns (possibly empty).
    package func shares(ofRank r: Int) -> Range<Int> {
        let start = workersPerRank[..<r].reduce(0, +)
        let lo = min(start, shares), hi = min(start + workersPerRank[r], shares)
        return lo..<hi
    }

    /// The molecules rank r computes (those of its shares).
    package func molecules(ofRank r: Int) -> Range<Int> {
        let s = shares(ofRank: r)
        if s.isEmpty { let c = molecules(ofShare: 0).lowerBound; return c..<c }
        return molecules(ofShare: s.lowerBound).lowerBound..<molecules(ofShare: s.upperBound - 1).upperBound
    }

    /// The rank that owns the last share.
    package var lastOwner: Int {
        var total = 0
        for (r, w) in workersPerRank.enumerated() { total += w; if total >= shares { return r } }
        return workersPerRank.count - 1
    }
}

/// Elements per message of the gradient chain (256 KB of Float32).
package let gradientChainChunk = 1 << 16

/// Combines the gradients of all ranks' shares in global share order (see the top of this
/// file). `parts` are this rank's share gradients in order, `weights` each share's weight
/// relative to the whole global batch; `count` values each. `buffer` receives the result
/// on ranks other than 0 (count values); rank 0 combines into `parts[0]`. Returns the
/// combined gradient, identical on every rank. `combine` is false when the batch has a
/// single share (as in one process, nothing is scaled).
package func combineInShareOrder(group: any ProcessGroup, compute: any ComputeBackend,
                                 parts: [UnsafeMutablePointer<Float>], weights: [Float], count: Int,
                                 lastOwner: Int, combine: Bool, buffer: UnsafeMutablePointer<Float>,
                                 chunk: Int = gradientChainChunk) -> UnsafeMutablePointer<Float> {
    let r = group.rank
    let out = r == 0 ? parts[0] : buffer
    if r <= lastOwner {
        precondition(!parts.isEmpty, "every rank up to the last owner holds a share")
        var start = 0
        while start < count {
            let len = min(chunk, count - start)
            if r == 0 {
                if combine { compute.combineGradients(parts.map { $0 + start }, weights: weights, count: len) }
            } else {
                group.receive(UnsafeMutableRawBufferPointer(start: out + start, count: 4 * len), from: r - 1)
                // prefix + f_w·g_w for each share in order: the single-process loop's next terms.
                compute.combineGradients([out + start] + parts.map { $0 + start }, weights: [1] + weights, count: len)
            }
            if r < lastOwner { group.send(UnsafeRawBufferPointer(start: out + start, count: 4 * len), to: r + 1) }
            start += len
        }
    }
    if group.size > 1 { group.broadcast(UnsafeMutableRawBufferPointer(start: out, count: 4 * count), root: lastOwner) }
    return out
}

extension WorkerPool where Worker == Engine {
    /// The shares of `layout` that `rank` owns (every share for a layout of one rank),
    /// predicted one engine per share, `batchSize` molecules per engine call from each
    /// share's start; their values in molecule order. `geometries` gives the geometry of a
    /// range of molecules.
    package func predict(layout: ShareLayout, rank: Int, batchSize: Int, parameters: [Float],
                         geometries: @escaping @Sendable (Range<Int>) throws -> [MoleculeGeometry]) throws -> [[Float]] {
        try predict(count: layout.count, shares: layout.shares, owned: layout.shares(ofRank: rank), batchSize: batchSize,
                    parameters: parameters, geometries: geometries)
    }
}

/// Gathers per-molecule prediction values on rank 0: every rank passes the values it
/// computed (`P` each, its molecules in order) and the number of molecules every rank
/// computed; rank 0 gets all ranks' values concatenated in rank order, the others [].
package func gatherValues(group: any ProcessGroup, local: [[Float]], countsPerRank: [Int], outputs P: Int) -> [[Float]] {
    if group.rank != 0 {
        let flat = local.flatMap { $0 }
        if !flat.isEmpty { flat.withUnsafeBytes { group.send($0, to: 0) } }
        return []
    }
    var all = local
    for r in 1..<group.size where countsPerRank[r] > 0 {
        var flat = [Float](repeating: 0, count: countsPerRank[r] * P)
        flat.withUnsafeMutableBytes { group.receive($0, from: r) }
        for i in 0..<countsPerRank[r] { all.append(Array(flat[(i * P)..<((i + 1) * P)])) }
    }
    return all
}
