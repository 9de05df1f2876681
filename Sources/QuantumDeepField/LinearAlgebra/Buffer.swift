// Growable Float32 storage for an engine's activations, and the column reductions the
// normalizations share.

/// A growable, reusable Float32 buffer owned by one engine. It reallocates only when a
/// larger batch needs more room, so steady-state training and prediction allocate
/// nothing. `reserve` invalidates earlier pointers when it grows: take `pointer` after
/// the last `reserve` of a call and never keep it across calls.
package final class Buffer {
    package private(set) var pointer: UnsafeMutablePointer<Float>
    package private(set) var capacity: Int

    package init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 16)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` values (contents are not preserved when it grows).
    @discardableResult
    package func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = max(count, capacity + capacity / 2)
            pointer = .allocate(capacity: capacity)
            pointer.initialize(repeating: 0, count: capacity)
        }
        return pointer
    }

    package subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// A copy of the first `count` values.
    package func array(_ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// F.normalize's denominator: max(‖x‖, 1e-12) (docs/model.md §5).
public let normalizationEpsilon: Float = 1e-12

/// Adds the column sums of squares of a row-major m×n matrix (row stride `ld`) into
/// `sums` (n Doubles). Called once for a whole matrix, or once per chunk of rows.
@inline(__always)
package func accumulateColumnSquares(_ a: UnsafePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                                     into sums: UnsafeMutablePointer<Double>) {
    for i in 0..<m {
        let row = a + i * ld
        for j in 0..<n { let v = Double(row[j]); sums[j] += v * v }
    }
}

/// The normalization denominators max(‖x_:j‖, ε) from the column sums of squares.
@inline(__always)
package func normsFromSquares(_ sums: UnsafePointer<Double>, count n: Int, into norms: UnsafeMutablePointer<Float>) {
    for j in 0..<n { norms[j] = max(Float(sums[j].squareRoot()), normalizationEpsilon) }
}

/// Column denominators max(‖a_:j‖, ε) of a row-major m×n matrix, accumulated in Double
/// (`sums`: n Doubles of scratch).
@inline(__always)
package func columnNorms(_ a: UnsafePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                         into norms: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Double>) {
    sums.update(repeating: 0, count: n)
    accumulateColumnSquares(a, rows: m, cols: n, ld: ld, into: sums)
    normsFromSquares(sums, count: n, into: norms)
}

/// Divides every column j of a row-major m×n matrix by `norms[j]`.
@inline(__always)
package func divideColumns(_ a: UnsafeMutablePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                           by norms: UnsafePointer<Float>) {
    for i in 0..<m {
        let row = a + i * ld
        for j in 0..<n { row[j] /= norms[j] }
    }
}

/// Multiplies every column j of a row-major m×n matrix by `factors[j]`.
@inline(__always)
package func scaleColumns(_ a: UnsafeMutablePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                          by factors: UnsafePointer<Float>) {
    for i in 0..<m {
        let row = a + i * ld
        for j in 0..<n { row[j] *= factors[j] }
    }
}

/// x · y over `count` Floats, summed in order in Float.
@inline(__always)
package func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
    var acc: Float = 0
    for j in 0..<n { acc += x[j] * y[j] }
    return acc
}

/// Column-wise dot products of two row-major m×n matrices, in Double.
@inline(__always)
package func columnDots(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                        into out: UnsafeMutablePointer<Double>) {
    out.update(repeating: 0, count: n)
    for i in 0..<m {
        let ra = a + i * ld, rb = b + i * ld
        for j in 0..<n { out[j] += Double(ra[j]) * Double(rb[j]) }
    }
}
