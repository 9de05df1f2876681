import Foundation
import Synchronization

// Where the time goes (`qdf bench`'s phase breakdown). A `TimedCompute` backend wraps the
// GEMM library and times every GEMM; engines and predictors that run on it also time
// their stages. The times are summed over the worker threads (thread-seconds), so their
// shares say what the cores spend their time on. Without a `TimedCompute` nothing is timed.

/// The stages of a forward pass, and reading and geometry around it.
package enum Phase: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Reading molecules from their file (on the reading thread).
    case reading
    /// Distances and the basis layout of each molecule (`MoleculeGeometry`).
    case geometry
    /// φ = d^(q−1) exp(−ζd²) and its column norms (LCAO).
    case basis
    /// Ĉ: the gathered, column-normalized coefficients (LCAO).
    case coefficients
    /// ψ = φ̂Ĉ and its norms, or the first layer through the basis (LCAO, §12).
    case orbitals
    /// The energy functional's layers (GEMMs, bias, ReLU).
    case layers
    /// The readout (sum or mean) and the property head.
    case readout

    /// A short name for JSON.
    package var key: String {
        switch self {
        case .reading: return "reading"
        case .geometry: return "geometry"
        case .basis: return "basis"
        case .coefficients: return "coefficients"
        case .orbitals: return "orbitals"
        case .layers: return "layers"
        case .readout: return "readout"
        }
    }

    package var description: String {
        switch self {
        case .reading: return "reading"
        case .geometry: return "geometry (distances, basis layout)"
        case .basis: return "basis functions φ and their norms"
        case .coefficients: return "coefficients Ĉ"
        case .orbitals: return "orbitals ψ = φ̂Ĉ, or first layer through the basis"
        case .layers: return "energy functional layers"
        case .readout: return "readout and property"
        }
    }
}

/// Accumulated thread-seconds per phase, and in GEMMs. Safe to add to from several threads.
package final class PhaseTimer: Sendable {
    private let seconds = Mutex<[Double]>([Double](repeating: 0, count: Phase.allCases.count))
    private let gemmNanoseconds = Atomic<UInt64>(0)

    package init() {}

    /// Monotonic nanoseconds.
    @inline(__always)
    package static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Adds the time since `mark` to `phase` and moves `mark` to now.
    @inline(__always)
    package func lap(_ phase: Phase, _ mark: inout UInt64) {
        let t = PhaseTimer.now()
        let dt = Double(t &- mark) * 1e-9
        seconds.withLock { $0[phase.rawValue] += dt }
        mark = t
    }

    @inline(__always)
    package func addGEMM(nanoseconds: UInt64) { gemmNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed) }

    /// Thread-seconds per phase.
    package var phases: [Phase: Double] {
        let s = seconds.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0, s[$0.rawValue]) })
    }

    /// Thread-seconds inside GEMM calls (part of the stages' times).
    package var gemmSeconds: Double { Double(gemmNanoseconds.load(ordering: .relaxed)) * 1e-9 }

    /// Clears every sum.
    package func reset() {
        seconds.withLock { for i in $0.indices { $0[i] = 0 } }
        gemmNanoseconds.store(0, ordering: .relaxed)
    }
}

/// A backend that forwards to `base` and times every GEMM into `timer`; engines and
/// predictors running on it time their stages into the same timer.
package struct TimedCompute: ComputeBackend {
    package let base: any ComputeBackend
    package let timer: PhaseTimer

    package init(base: any ComputeBackend = defaultCompute, timer: PhaseTimer = PhaseTimer()) {
        self.base = base
        self.timer = timer
    }

    package var name: String { base.name + " (timed)" }

    package func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let t0 = PhaseTimer.now()
        base.sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        timer.addGEMM(nanoseconds: PhaseTimer.now() &- t0)
    }

    package func combineGradients(_ parts: [UnsafeMutablePointer<Float>], weights: [Float], count: Int) {
        base.combineGradients(parts, weights: weights, count: count)
    }
}
