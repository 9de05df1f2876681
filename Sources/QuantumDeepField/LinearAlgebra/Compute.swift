// The compute seam: every GEMM of the engine and the combination of the workers'
// gradients go through a `ComputeBackend`, so another BLAS, a distributed all-reduce
// (MPI) or an accelerator plugs in here and nowhere else.

/// The operations the engine computes with.
///
/// Matrices are row-major Float32. Pointers are borrowed for the duration of the call
/// (the caller owns the memory). One backend is shared by all molecule-parallel workers, so
/// its methods must be safe to call from several threads at once.
package protocol ComputeBackend: Sendable {
    /// A short name for reports (`qdf info`, `qdf bench`).
    var name: String { get }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C. op(A) is m×k (A is m×k, or k×m when
    /// transposed), op(B) is k×n; `lda`, `ldb`, `ldc` are the row strides.
    func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
               alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)

    /// Combines the gradients of the shares of one batch into the batch's gradient:
    /// parts[0][i] = Σ_w weights[w] · parts[w][i] for i < count, in the order w = 0, 1, …
    /// (deterministic). A distributed backend also sums across processes here.
    func combineGradients(_ parts: [UnsafeMutablePointer<Float>], weights: [Float], count: Int)
}

extension ComputeBackend {
    /// `sgemm` with alpha = 1 and beta = 0 unless given.
    @inline(__always)
    package func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              beta: beta, c: c, ldc: ldc)
    }

    /// The local combination: scale part 0, then add each further part in order. Traps
    /// unless there is one weight per part and at least one part.
    package func combineGradients(_ parts: [UnsafeMutablePointer<Float>], weights: [Float], count: Int) {
        precondition(parts.count == weights.count && !parts.isEmpty, "one weight per gradient part")
        let g0 = parts[0], f0 = weights[0]
        if f0 != 1 { for i in 0..<count { g0[i] *= f0 } }
        for w in 1..<parts.count {
            let f = weights[w], gw = parts[w]
            for i in 0..<count { g0[i] += f * gw[i] }
        }
    }
}

/// The system BLAS is a backend as it is: OpenBLAS loaded at run time, or the portable
/// GEMM where no library could be loaded (`BLAS.info` says which).
extension BLAS: ComputeBackend {
    package var name: String { info.library }
}

/// The backend used when none is given: the system BLAS.
package let defaultCompute: any ComputeBackend = BLAS.shared
