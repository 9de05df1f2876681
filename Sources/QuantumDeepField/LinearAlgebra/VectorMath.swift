// Vectorized elementwise math for the non-GEMM work (the basis functions' exponentials).
//
// exp(x) in Float32, eight lanes at a time: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in
// two parts so that n·ln2 is exact), e^r by the Cephes minimax polynomial of degree 7,
// then the result's exponent field is set to n. Relative error ≤ 2 ulp against expf for
// x ≥ −87.3 (the test measures it over the range the basis functions use); below that,
// where expf returns subnormals or 0 (< 1.2e-38), it returns 0; above 88.7 it returns +∞.
// NaN in → NaN out.

/// Elementwise functions over SIMD vectors and buffers.
package enum VectorMath {
    /// The vector width the buffer functions use.
    package typealias Vector = SIMD8<Float>

    /// e^x for each lane (see the file's comment for the accuracy).
    @inline(__always)
    package static func exp(_ x: Vector) -> Vector {
        let log2e: Float = 1.44269504088896341
        let ln2Hi: Float = 0.693359375, ln2Lo: Float = -2.12194440e-4
        var v = x.clamped(lowerBound: Vector(repeating: -87.33655), upperBound: Vector(repeating: 88.72283))
        let n = (v * log2e + 0.5).rounded(.down)
        v = v - n * ln2Hi
        v = v - n * ln2Lo
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * v + 1.3981999507e-3
        p = p * v + 8.3334519073e-3
        p = p * v + 4.1665795894e-2
        p = p * v + 1.6666665459e-1
        p = p * v + 5.0000001201e-1
        p = p * (v * v) + v + 1
        // 2^n from the exponent field; n ∈ [−126, 128) after the clamp.
        let bits = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
        var r = p * unsafeBitCast(bits, to: Vector.self)
        r.replace(with: 0, where: x .< -87.33655)
        r.replace(with: .infinity, where: x .> 88.72283)
        r.replace(with: x, where: x .!= x)
        return r
    }

    /// y[i] = e^{y[i]} for `count` values, in place.
    @inline(__always)
    package static func expInPlace(_ y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let w = Vector.scalarCount
        while i + w <= count {
            let v = UnsafeRawPointer(y + i).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: exp(v), as: Vector.self)
            i += w
        }
        if i < count {
            var v = Vector(repeating: 0)
            for l in 0..<(count - i) { v[l] = y[i + l] }
            let e = exp(v)
            for l in 0..<(count - i) { y[i + l] = e[l] }
        }
    }
}
