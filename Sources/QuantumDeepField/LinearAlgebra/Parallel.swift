import Foundation
import Synchronization

// Concurrency primitives of the engine. qdf parallelises over molecules: one worker per
// core, each with its own engine and buffers, BLAS single-threaded inside.

/// The number of molecule-parallel workers used when none is given: one per core, at most 8.
public let defaultWorkers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))

/// Runs `body(w)` for w in 0..<n on up to n threads and returns the results in order of w.
/// The first error thrown by any iteration is rethrown after all have finished.
package func concurrentMap<T: Sendable>(_ n: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
    if n <= 1 { return try (0..<n).map(body) }
    let results = Mutex<[T?]>(Array(repeating: nil, count: n))
    let failure = Mutex<(any Error)?>(nil)
    DispatchQueue.concurrentPerform(iterations: n) { w in
        do {
            let r = try body(w)
            results.withLock { $0[w] = r }
        } catch {
            failure.withLock { if $0 == nil { $0 = error } }
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
    package func run<T: Sendable>(_ n: Int, _ body: @Sendable (Int, Worker) throws -> T) throws -> [T] {
        try lock.withLock {
            while workers.count < n { workers.append(make()) }
            return try concurrentMap(n) { w in try body(w, self.workers[w]) }
        }
    }

    /// Gives the caller all workers at once (for sequential work across them).
    package func withAll<T>(_ body: ([Worker]) throws -> T) rethrows -> T {
        try lock.withLock { try body(workers) }
    }
}
