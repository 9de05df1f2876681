// Scratch memory for the stages' temporary values.
//
// A stage asks the arena for the Float or Double values it needs, next to the code that
// uses them; everything handed out stays valid until the owner calls `reset()`. The
// arena keeps one block that grows to the largest total ever requested between two
// resets, so once a batch shape has been seen, nothing is allocated again.

/// A bump allocator for temporary Float and Double arrays (uninitialized memory).
///
/// One owner (an engine, a density block worker) uses it from one thread. Pointers it
/// returns are valid until the next `reset()` and must not be kept beyond it.
package final class ScratchArena {
    private var block: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    /// Requests that did not fit the block: freed at the next reset, which then grows the block.
    private var overflow: [UnsafeMutableRawPointer] = []
    private var demand = 0
    private static let alignment = 64

    package init(bytes: Int = 1 << 16) {
        capacity = max(bytes, 4096)
        block = .allocate(byteCount: capacity, alignment: ScratchArena.alignment)
    }

    deinit {
        block.deallocate()
        for p in overflow { p.deallocate() }
    }

    /// Bytes of the arena's block (it grows only at `reset()`, to the largest demand seen).
    package var blockBytes: Int { capacity }

    /// Releases everything handed out; grows the block to the largest demand seen.
    package func reset() {
        for p in overflow { p.deallocate() }
        overflow.removeAll(keepingCapacity: true)
        if demand > capacity {
            block.deallocate()
            capacity = demand + demand / 4
            block = .allocate(byteCount: capacity, alignment: ScratchArena.alignment)
        }
        used = 0
        demand = 0
    }

    private func bytes(_ n: Int) -> UnsafeMutableRawPointer {
        let size = (max(n, 1) + ScratchArena.alignment - 1) & ~(ScratchArena.alignment - 1)
        demand += size
        if used + size <= capacity {
            defer { used += size }
            return block + used
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: ScratchArena.alignment)
        overflow.append(p)
        return p
    }

    /// `n` uninitialized Float values, valid until the next `reset()`.
    package func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        bytes(n * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: n)
    }

    /// `n` uninitialized Int32 values, valid until the next `reset()`.
    package func int32s(_ n: Int) -> UnsafeMutablePointer<Int32> {
        bytes(n * MemoryLayout<Int32>.stride).bindMemory(to: Int32.self, capacity: n)
    }

    /// `n` uninitialized Double values, valid until the next `reset()`.
    package func doubles(_ n: Int) -> UnsafeMutablePointer<Double> {
        bytes(n * MemoryLayout<Double>.stride).bindMemory(to: Double.self, capacity: n)
    }
}
