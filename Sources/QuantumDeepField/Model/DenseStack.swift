// A stack of fully connected ReLU layers applied to every row of a matrix, forward
// and backward. Both DNNs of QDF use it over all grid points of a batch at once
// (one GEMM per layer, no padding): the energy functional (ψ rows → h) and the
// Hohenberg–Kohn map's hidden layers (g rows).
//
//   x_{l+1} = relu(x_l W_lᵀ + b_l),   W_l: width × width ([out, in] as in PyTorch)

package enum DenseStack {
    /// activations[0] holds the input (rows × width); fills activations[1...L].
    package static func forward(rows: Int, width: Int, weights: [UnsafePointer<Float>], biases: [UnsafePointer<Float>],
                                activations: [UnsafeMutablePointer<Float>], compute: any ComputeBackend) {
        for l in 0..<weights.count {
            let x = activations[l], y = activations[l + 1]
            compute.gemm(.none, .transpose, m: rows, n: width, k: width, a: x, lda: width,
                         b: weights[l], ldb: width, c: y, ldc: width)
            biasReLU(y, rows: rows, width: width, bias: biases[l])
        }
    }

    /// y = relu(y + bias) for every row.
    @inline(__always)
    package static func biasReLU(_ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        for i in 0..<rows {
            let r = y + i * width
            for j in 0..<width { r[j] = max(r[j] + bias[j], 0) }
        }
    }

    /// dz = dy ⊙ (y > 0) in place (y = relu(z), so y > 0 exactly where z > 0), and
    /// sums[j] += Σ_i dz_ij. Branch-free, so the compiler vectorizes it.
    @inline(__always)
    package static func maskReLUAndSumRows(_ dy: UnsafeMutablePointer<Float>, activations y: UnsafePointer<Float>,
                                           rows: Int, width: Int, into sums: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let r = dy + i * width, a = y + i * width
            for j in 0..<width {
                let v = a[j] > 0 ? r[j] : 0
                r[j] = v
                sums[j] += v
            }
        }
    }

    /// dz = dy ⊙ (y > 0) in place: the mask alone, for a frozen layer (no bias gradient).
    @inline(__always)
    package static func maskReLU(_ dy: UnsafeMutablePointer<Float>, activations y: UnsafePointer<Float>,
                                 rows: Int, width: Int) {
        for i in 0..<(rows * width) { dy[i] = y[i] > 0 ? dy[i] : 0 }
    }

    /// Given d(output) in `dTop` (rows × width, overwritten), accumulates the weight and
    /// bias gradients and leaves d(input) in `dInput`. `dScratch` is rows × width.
    /// `weightGrads`/`biasGrads` nil: the layers are frozen (only d(input) is computed, the
    /// weight-gradient GEMMs are skipped).
    package static func backward(rows: Int, width: Int, weights: [UnsafePointer<Float>],
                                 activations: [UnsafePointer<Float>],
                                 weightGrads: [UnsafeMutablePointer<Float>]?, biasGrads: [UnsafeMutablePointer<Float>]?,
                                 dTop: UnsafeMutablePointer<Float>, dScratch: UnsafeMutablePointer<Float>,
                                 dInput: UnsafeMutablePointer<Float>, compute: any ComputeBackend) {
        let L = weights.count
        if L == 0 { dInput.update(from: dTop, count: rows * width); return }
        var dy = dTop
        for l in stride(from: L - 1, through: 0, by: -1) {
            let y = activations[l + 1], x = activations[l]
            if let biasGrads {
                // dZ = dy ⊙ (y > 0), and the bias gradient Σ_rows dZ, in one pass.
                maskReLUAndSumRows(dy, activations: y, rows: rows, width: width, into: biasGrads[l])
            } else {
                maskReLU(dy, activations: y, rows: rows, width: width)
            }
            if let weightGrads {
                compute.gemm(.transpose, .none, m: width, n: width, k: rows, a: dy, lda: width, b: x, ldb: width,
                             beta: 1, c: weightGrads[l], ldc: width)
            }
            let dx = l == 0 ? dInput : (dy == dTop ? dScratch : dTop)
            compute.gemm(.none, .none, m: rows, n: width, k: width, a: dy, lda: width, b: weights[l], ldb: width,
                         c: dx, ldc: width)
            dy = dx
        }
    }
}
