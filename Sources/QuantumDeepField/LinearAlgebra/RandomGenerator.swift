import Foundation

// The generator of parameter initialization, epoch shuffles and synthetic data: seedable,
// with a state a checkpoint saves and restores, so a resumed run draws what the
// uninterrupted one would have.

/// A small, fast, seedable generator (xoshiro256**), with uniform and normal draws.
/// Its whole state can be saved and restored (for resumable training).
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The four 64-bit words of xoshiro256** state.
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose state is the first four outputs of `SplitMix64(seed:)`.
    public init(seed: UInt64) {
        var seeds = SplitMix64(seed: seed)
        state = (seeds.next(), seeds.next(), seeds.next(), seeds.next())
    }

    /// Restores a state saved with `stateArray` (its first four words; traps on fewer).
    public init(state: [UInt64]) {
        self.state = (state[0], state[1], state[2], state[3])
    }
    /// The state as four words, for checkpoints.
    public var stateArray: [UInt64] { [state.0, state.1, state.2, state.3] }

    /// Equal states.
    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool { a.stateArray == b.stateArray }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    /// Uniform in [a, b) (one `nextUnit()` draw).
    public mutating func nextUniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * nextUnit() }
    /// Standard normal (Box–Muller, two uniform draws, the sine half discarded).
    public mutating func nextNormal() -> Double {
        var u = nextUnit()
        while u <= 0 { u = nextUnit() }
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * nextUnit())
    }
    /// A random index in 0..<n (next() % n: a negligible modulo bias); n must be > 0.
    public mutating func nextIndex(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
