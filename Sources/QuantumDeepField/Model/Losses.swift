// The training losses (docs/model.md §8), value and gradient side by side.
//
//   Loss_E = mean over molecules × outputs of (E − Ê)²
//   Loss_V = mean over all grid points of the batch of (V − V̂)²

package enum Losses {
    /// Σ (ŷ_i − y_i)² over `count` values, and d/dŷ_i = 2(ŷ_i − y_i)/n into `gradient`,
    /// where n is the number of terms of the whole mean. Returns the sum (not yet ÷ n).
    @inline(__always)
    package static func squaredError(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                                     terms n: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
        var sum = 0.0
        let scale = 2 / Float(n)
        for i in 0..<count {
            let diff = predicted[i] - target[i]
            sum += Double(diff) * Double(diff)
            gradient[i] = scale * diff
        }
        return sum
    }
}
