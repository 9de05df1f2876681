// The training losses (docs/model.md §8), value and gradient side by side.
//
//   Loss_E = mean over molecules × outputs of ℓ(Ê − E), ℓ = the chosen `EnergyLoss`
//   Loss_V = mean over all grid points of the batch of (V − V̂)²
//   Loss_ρ = mean over the grid points of the batch's molecules with density targets of
//            (N_f/N_e)|ρ_i − q_i|  (optional, docs/model.md §16): for one molecule,
//            (1/N_f) Σ_i (N_f/N_e)|ρ_i − q_i| = Σ_i |ρ_i − q_i| / N_e, the field grid's
//            analogue of ∫|Δρ| dV / N_e

/// The loss on the predicted properties (Loss_E). The reference trains with `.mse`.
public enum EnergyLoss: Sendable, Equatable, CustomStringConvertible {
    /// ℓ(r) = r² (the reference).
    case mse
    /// ℓ(r) = |r|; its derivative at r = 0 is taken as 0.
    case l1
    /// ℓ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond: quadratic near 0, linear in the tails.
    case huber(delta: Double)

    /// `mse`, `l1`, `huber` (δ = 1) or `huber:δ`.
    public init?(_ text: String) {
        switch text {
        case "mse": self = .mse
        case "l1": self = .l1
        case "huber": self = .huber(delta: 1)
        default:
            guard text.hasPrefix("huber:"), let d = Double(text.dropFirst(6)), d > 0, d.isFinite else { return nil }
            self = .huber(delta: d)
        }
    }

    public var description: String {
        switch self {
        case .mse: return "mse"
        case .l1: return "l1"
        case .huber(let d): return d == 1 ? "huber" : "huber:\(d)"
        }
    }

    /// ℓ(r) and ℓ′(r).
    @inline(__always)
    package func valueAndDerivative(_ r: Float) -> (Double, Float) {
        switch self {
        case .mse: return (Double(r) * Double(r), 2 * r)
        case .l1: return (Double(abs(r)), r > 0 ? 1 : (r < 0 ? -1 : 0))
        case .huber(let delta):
            let d = Float(delta)
            if abs(r) <= d { return (0.5 * Double(r) * Double(r), r) }
            return (delta * (Double(abs(r)) - 0.5 * delta), r > 0 ? d : -d)
        }
    }
}

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

    /// Σ ℓ(ŷ_i − y_i) over `count` values and d/dŷ_i = ℓ′(ŷ_i − y_i)/n into `gradient`
    /// (n: terms of the whole mean). Returns the sum (not yet ÷ n). For `.mse` this is
    /// exactly `squaredError`.
    @inline(__always)
    package static func error(_ loss: EnergyLoss, predicted: UnsafePointer<Float>, target: UnsafePointer<Float>,
                              count: Int, terms n: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
        if loss == .mse {
            return squaredError(predicted: predicted, target: target, count: count, terms: n, gradient: gradient)
        }
        var sum = 0.0
        let inv = 1 / Float(n)
        for i in 0..<count {
            let (v, d) = loss.valueAndDerivative(predicted[i] - target[i])
            sum += v
            gradient[i] = d * inv
        }
        return sum
    }

    /// Loss_ρ's terms for one molecule: w·Σ_i (N_f/N_e)|ρ_i − q_i| over its `count` = N_f
    /// points, and d/dρ_i = w·(N_f/N_e)·sign(ρ_i − q_i)/n added into `dRho` (n: terms of
    /// the whole mean; the derivative at ρ_i = q_i is taken as 0). Returns the sum (not yet ÷ n).
    @inline(__always)
    package static func densityDeviation(rho: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                                         electrons: Int, weight: Float, terms n: Int,
                                         dRho: UnsafeMutablePointer<Float>) -> Double {
        let f = weight * Float(count) / Float(max(electrons, 1))
        let g = f / Float(n)
        var sum = 0.0
        for i in 0..<count {
            let d = rho[i] - target[i]
            sum += Double(abs(d))
            dRho[i] += d > 0 ? g : (d < 0 ? -g : 0)
        }
        return Double(f) * sum
    }
}
