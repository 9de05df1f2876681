// Vectorized elementwise math for the non-GEMM work (the basis functions' exponentials).
//
// exp(x) in Float32: x = n·ln2 + r with |r| ≤ ln2/2 (n = round(x·log2e) by the 1.5·2²³
// shift, ln2 split in two parts so that n·ln2 is exact), e^r by the Cephes minimax
// polynomial of degree 7, times 2^n built in two halves from exponent fields (so that
// n = 128 near the top of the range stays finite). Relative error ≤ 2 ulp against expf for
// x ≥ −87.3 (the test measures it over the range the basis functions use); below −87.33655,
// where expf returns subnormals or 0 (< 1.2e-38), it returns 0; above 88.72283 it returns +∞.
// NaN in → NaN out.
//
// Written lane by lane with only arithmetic, comparisons and bit casts, so that the
// compiler's loop vectorizer turns `expInPlace` into packed SIMD code (SSE's 4 lanes on the
// baseline target). The same formula over Swift's SIMD8 type was 7× slower than this and
// 4× slower than expf: its Float → Int32 lane conversion and rounding are not lowered to
// vector instructions but run as generic per-lane calls.

/// Elementwise functions over buffers.
package enum VectorMath {
    /// e^x (see the file's comment for the accuracy).
    @inline(__always)
    package static func exp(_ x: Float) -> Float {
        let lo: Float = -87.33655, hi: Float = 88.72283
        var v = x < lo ? lo : x
        v = v > hi ? hi : v
        // n = round(v·log2e): adding 1.5·2²³ leaves n in t's low mantissa bits.
        let shift: Float = 12_582_912
        let t = v * 1.44269504088896341 + shift
        let n = t - shift
        v = v - n * 0.693359375
        v = v - n * -2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * v + 1.3981999507e-3
        p = p * v + 8.3334519073e-3
        p = p * v + 4.1665795894e-2
        p = p * v + 1.6666665459e-1
        p = p * v + 5.0000001201e-1
        p = p * (v * v) + v + 1
        // 2^n = 2^k1 · 2^k2 with n ∈ [−126, 128], each half a normal number.
        let k = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        let k1 = k &>> 1, k2 = k &- k1
        var r = p * Float(bitPattern: UInt32(bitPattern: (k1 &+ 127) &<< 23))
            * Float(bitPattern: UInt32(bitPattern: (k2 &+ 127) &<< 23))
        r = x < lo ? 0 : r
        r = x > hi ? .infinity : r
        return r
    }

    /// y[i] = e^{y[i]} for `count` values, in place (a loop the compiler vectorizes).
    @inline(__always)
    package static func expInPlace(_ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = exp(y[i]) }
    }
}
