import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// Concurrency primitives of the engine. qdf parallelises over molecules: one worker per
// core, each with its own engine and buffers, BLAS single-threaded inside.

/// The number of molecule-parallel workers used when none is given: one per core this
/// process may run on (`availableCores`), at most 8.
public let defaultWorkers = max(1, min(availableCores, 8))

/// The cores this process may use: the CPUs of its affinity mask (taskset, numactl, a batch
/// scheduler's binding), further limited by a cgroup v2 CPU quota (cpu.max, as containers
/// set it), never more than the online processors. 1 at least.
public let availableCores: Int = {
    var n = ProcessInfo.processInfo.activeProcessorCount
    #if os(Linux)
    // sched_getaffinity needs _GNU_SOURCE, which Swift's Glibc module does not define:
    // found at run time instead (a mask of 1024 CPUs, glibc's cpu_set_t).
    typealias Affinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
    if let sym = dlsym(nil, "sched_getaffinity") {
        let getAffinity = unsafeBitCast(sym, to: Affinity.self)
        var mask = [UInt64](repeating: 0, count: 16)
        let ok = mask.withUnsafeMutableBytes { getAffinity(0, $0.count, $0.baseAddress!) } == 0
        let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        if ok && count > 0 { n = min(n, count) }
    }
    if let text = try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8) {
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        if f.count >= 2, let quota = Double(f[0]), let period = Double(f[1]), quota > 0, period > 0 {
            n = min(n, max(1, Int((quota / period).rounded(.up))))
        }
    }
    #endif
    return max(1, n)
}()

/// `body` over 0..<count cut into `chunks` contiguous ranges (at least 1; the cut of
/// `ShareLayout`), run in parallel (`concurrentMap`); the ranges' results concatenated in
/// order. Throws only what `body` throws.
package func concurrentChunks<T: Sendable, E: Error>(_ count: Int, chunks: Int,
                                                     _ body: @Sendable (Range<Int>) throws(E) -> [T]) throws(E) -> [T] {
    let n = max(1, chunks)
    return try concurrentMap(n) { (c) throws(E) -> [T] in
        try body(ShareLayout.molecules(ofShare: c, count: count, shares: n))
    }.flatMap { $0 }
}

/// Runs `body(w)` for w in 0..<n on up to n threads and returns the results in order of w.
/// The first error thrown by any iteration is rethrown after all have finished. The
/// error type is `body`'s (typed throws: a closure that cannot throw makes a call that
/// cannot throw, as `rethrows` would, and the error caught on a worker thread is
/// passed on with its type).
package func concurrentMap<T: Sendable, E: Error>(_ n: Int, _ body: @Sendable (Int) throws(E) -> T) throws(E) -> [T] {
    if n <= 1 { return try (0..<n).map(body) }
    let results = Mutex<[T?]>(Array(repeating: nil, count: n))
    let failure = Mutex<E?>(nil)
    DispatchQueue.concurrentPerform(iterations: n) { w in
        switch Result(catching: { () throws(E) -> T in try body(w) }) {
        case .success(let r): results.withLock { $0[w] = r }
        case .failure(let error): failure.withLock { if $0 == nil { $0 = error } }
        }
    }
    if let e = failure.withLock({ $0 }) { throw e }
    return results.withLock { $0.map { $0! } }
}

/// Mutable per-worker state (an engine and its buffers) used by concurrent workers, each
/// worker by exactly one thread at a time.
///
/// `@unchecked Sendable` invariant: `workers[w]` is touched only inside `run` by iteration
/// w (or inside `withAll` by the caller alone), and both hold `lock` for their whole
/// duration, so two threads never touch the same worker and two calls never overlap.
package final class WorkerPool<Worker>: @unchecked Sendable {
    private var workers: [Worker]
    private let make: () -> Worker
    private let lock = NSLock()

    package init(count: Int, make: @escaping () -> Worker) {
        self.make = make
        workers = (0..<max(1, count)).map { _ in make() }
    }

    package var count: Int { lock.withLock { workers.count } }

    /// Runs `body(w, workers[w])` for w in 0..<n concurrently (creating workers as needed)
    /// and returns the results in order of w.
    /// Throws only what `body` throws (the first error, after every iteration has ended).
    package func run<T: Sendable, E: Error>(_ n: Int, _ body: @Sendable (Int, Worker) throws(E) -> T) throws(E) -> [T] {
        lock.lock()
        defer { lock.unlock() }
        while workers.count < n { workers.append(make()) }
        return try concurrentMap(n) { (w) throws(E) -> T in try body(w, self.workers[w]) }
    }

    /// Gives the caller all workers at once (for sequential work across them).
    package func withAll<T>(_ body: ([Worker]) throws -> T) rethrows -> T {
        try lock.withLock { try body(workers) }
    }
}
