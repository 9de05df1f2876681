// A growable, reusable Float32 buffer. Hot loops take its pointer; it reallocates
// only when a larger batch needs more room, so steady-state training and
// prediction allocate nothing.

public final class Buffer: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 16)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for `count` values (contents are not preserved when it grows).
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = max(count, capacity + capacity / 2)
            pointer = .allocate(capacity: capacity)
            pointer.initialize(repeating: 0, count: capacity)
        }
        return pointer
    }

    public func zero(_ count: Int) { reserve(count).update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func array(_ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Column norms of a row-major m×n matrix: out[j] = sqrt(Σ_i a[i,j]²), accumulated in Double.
@inline(__always)
func columnNorms(_ a: UnsafePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                 into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Double>) {
    scratch.update(repeating: 0, count: n)
    for i in 0..<m {
        let row = a + i * ld
        for j in 0..<n { let v = Double(row[j]); scratch[j] += v * v }
    }
    for j in 0..<n { out[j] = Float(scratch[j].squareRoot()) }
}

/// Column-wise dot products of two row-major m×n matrices, in Double.
@inline(__always)
func columnDots(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows m: Int, cols n: Int, ld: Int,
                into out: UnsafeMutablePointer<Double>) {
    out.update(repeating: 0, count: n)
    for i in 0..<m {
        let ra = a + i * ld, rb = b + i * ld
        for j in 0..<n { out[j] += Double(ra[j]) * Double(rb[j]) }
    }
}

/// F.normalize's denominator: max(‖x‖, 1e-12).
public let normalizationEpsilon: Float = 1e-12

/// Wraps a value (typically a pointer into a buffer that concurrent iterations write
/// at disjoint places) so it can cross into concurrently executing code.
public struct UnsafeTransfer<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
