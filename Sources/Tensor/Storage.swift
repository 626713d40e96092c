import Foundation

/// A contiguous, 64-byte aligned block of Float32 owned by one or more tensors.
///
/// Storage is the only place memory is allocated for tensor data, so a buffer pool or a
/// different allocator can be swapped in here without touching any kernel.
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats. When `zeroed` is false the contents are undefined, which is
    /// what kernels that overwrite every element want.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size \(count)")
        self.count = count
        self.pointer = BufferPool.shared.take(count: count)
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    deinit { BufferPool.shared.give(pointer, count: count) }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }
}

/// Reuses large float buffers between training steps.
///
/// Fresh large allocations page-fault on first touch; a training step allocates the same
/// activation sizes every time, so keeping freed buffers by exact size removes that cost and
/// keeps peak memory flat from step to step. Buffers below `minimumPooledCount` go straight
/// to malloc, which already recycles small blocks well.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var pooledBytes = 0
    private let lock = NSLock()
    /// Upper bound on idle memory kept for reuse.
    public var capacityBytes = 4 << 30
    public let minimumPooledCount = 1 << 14

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        if count >= minimumPooledCount {
            lock.lock()
            if let p = free[count]?.popLast() {
                pooledBytes -= count * 4
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for a tensor")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        if count >= minimumPooledCount {
            lock.lock()
            if pooledBytes + count * 4 <= capacityBytes {
                free[count, default: []].append(pointer)
                pooledBytes += count * 4
                lock.unlock()
                return
            }
            lock.unlock()
        }
        Foundation.free(pointer)
    }

    /// Returns every idle buffer to the system.
    public func drain() {
        lock.lock()
        for (_, list) in free { list.forEach { Foundation.free($0) } }
        free.removeAll()
        pooledBytes = 0
        lock.unlock()
    }

    /// Bytes currently held idle for reuse.
    public var idleBytes: Int { lock.lock(); defer { lock.unlock() }; return pooledBytes }
}
