// Opt-in reduced precision (`qdf predict --precision bf16`): the energy functional's upper
// layers (dim × dim, about half of inference's GEMM work) with their operands rounded to
// bfloat16 (8 significant bits, Float32's exponent range) and their products accumulated
// in Float32, through a GEMM library that offers it (oneMKL's cblas_gemm_bf16bf16f32). On
// CPUs with AVX512_BF16 or AMX-BF16 such GEMMs run up to 2× (AVX512_BF16) or more (AMX)
// faster than Float32; elsewhere the library emulates them and they are slower. Never the
// default. The orbitals and the first layer stay Float32: with every GEMM in bf16 the
// reference model's QM9under14atoms test MAE moved by 0.0076 eV (0.0575 → 0.0652), with
// the upper layers alone by 0.0001 (per molecule ≤ 0.012 eV); docs/speed.md.

import Foundation
import Synchronization

/// The arithmetic of the model's GEMMs.
public enum Precision: String, CaseIterable, Sendable {
    /// Float32 throughout (the default, the reference's).
    case float32
    /// GEMM operands rounded to bfloat16, products accumulated in Float32.
    case bf16
}

/// A compute backend whose GEMMs round both operands to bfloat16 (round to nearest even)
/// and call the library's bf16 × bf16 → Float32 GEMM. The gradient combination stays
/// Float32. Safe to use from several threads at once: each call takes its own conversion
/// buffers from a pool (they grow to the largest operands, then no call allocates).
package final class BF16Compute: ComputeBackend, Sendable {
    /// The library whose bf16 GEMM is used.
    package let blas: BLAS
    package var name: String { "bf16 GEMMs through \(blas.info.library)" }
    private let pool = Mutex<[ConversionBuffers]>([])

    /// Uses `blas`; throws unless it offers bf16 GEMMs.
    package init(blas: BLAS) throws {
        guard blas.offersBF16 else {
            throw QDFError("--precision bf16 needs a GEMM library with bfloat16 GEMMs (oneMKL: `scripts/setup --blas` installs it); \(blas.info.name) has none")
        }
        self.blas = blas
    }

    /// The process's library if it offers bf16 GEMMs, else the first known library that
    /// loads and does (oneMKL); throws naming what is missing.
    package static func available() throws -> BF16Compute {
        if BLAS.shared.offersBF16 { return try BF16Compute(blas: BLAS.shared) }
        for lib in GEMMLibrary.known where lib.name != BLAS.shared.info.name {
            let b = BLAS(candidates: [lib], choice: "--precision bf16")
            if b.info.name == lib.name && b.offersBF16 { return try BF16Compute(blas: b) }
        }
        throw QDFError("--precision bf16 needs a GEMM library with bfloat16 GEMMs: oneMKL (libmkl_rt.so.3; `scripts/setup --blas` installs it from PyPI's mkl wheel) could not be loaded, and \(BLAS.shared.info.name) has none")
    }

    /// Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16); without them
    /// the library emulates bf16 GEMMs, more slowly than Float32 ones.
    package static var cpuHasBF16: Bool {
        guard let flags = CPUFlags.current() else { return false }
        return flags.contains("avx512_bf16") || flags.contains("amx_bf16")
    }

    package func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            blas.sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        // Stored shapes: A is m×k (k×m transposed), B is k×n (n×k transposed).
        let (aRows, aCols) = transA == .none ? (m, k) : (k, m)
        let (bRows, bCols) = transB == .none ? (k, n) : (n, k)
        let buffers = pool.withLock { $0.popLast() } ?? ConversionBuffers()
        defer { pool.withLock { $0.append(buffers) } }
        let a16 = buffers.a.reserve(aRows * aCols), b16 = buffers.b.reserve(bRows * bCols)
        BF16Compute.round(a, rows: aRows, cols: aCols, ld: lda, into: a16)
        BF16Compute.round(b, rows: bRows, cols: bCols, ld: ldb, into: b16)
        blas.gemmBF16(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a16, lda: aCols, b: b16, ldb: bCols,
                      beta: beta, c: c, ldc: ldc)
    }

    /// Rounds a rows × cols Float32 matrix (row stride `ld`) to bfloat16, packed (row stride
    /// cols): round to nearest, ties to even; NaN stays NaN; ±∞ and overflow give ±∞.
    package static func round(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into y: UnsafeMutablePointer<UInt16>) {
        for r in 0..<rows {
            let src = x + r * ld, dst = y + r * cols
            for j in 0..<cols { dst[j] = bf16Bits(src[j]) }
        }
    }

    /// The bfloat16 bits nearest to `x` (ties to even; a NaN gives a quiet NaN).
    @inline(__always)
    package static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The Float32 value of bfloat16 bits.
    @inline(__always)
    package static func float(bf16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}

/// A growable bfloat16 buffer (grows only; freed with its owner).
final class BF16Buffer {
    private(set) var pointer = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    private var capacity = 1
    /// At least `count` elements (reallocating only to grow).
    func reserve(_ count: Int) -> UnsafeMutablePointer<UInt16> {
        if count > capacity {
            pointer.deallocate()
            capacity = max(count, capacity * 2)
            pointer = .allocate(capacity: capacity)
        }
        return pointer
    }
    deinit { pointer.deallocate() }
}

/// One call's conversion buffers (A and B).
///
/// `@unchecked Sendable` invariant: an instance is used by one `BF16Compute.sgemm` call at a
/// time: the call takes it out of the pool (under the pool's `Mutex`), uses it on its own
/// thread and puts it back when it returns, so no two threads touch its buffers at once.
final class ConversionBuffers: @unchecked Sendable {
    let a = BF16Buffer(), b = BF16Buffer()
}
