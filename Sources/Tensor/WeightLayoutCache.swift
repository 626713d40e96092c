import CDNNL
import Foundation

/// Convolution weights kept in the blocked layouts oneDNN's primitives read, for as long as
/// the weights cannot change, so that a weight several calls read is reordered once.
///
/// Without a cache every convolution reorders its weight on every call: a frozen network
/// (LPIPS's VGG16) on every step, a discriminator that scores fakes and reals once per pass.
/// A cache is in effect for the convolutions run inside `during(_:)` on the calling thread and
/// for their backward passes (each convolution takes the cache in effect at its forward). The
/// contract: between a weight's first use through a cache and the cache's `clear()`, nothing
/// writes that weight. A frozen network keeps one cache for its lifetime; a trainer clears its
/// cache before its optimiser steps.
///
/// With `LDM_CHECK_WEIGHT_CACHE=1` in the environment (the test suite sets it) the cache also
/// keeps a plain copy of every weight it staged and stops the process when a reused weight
/// has changed since, naming its shape.
public final class WeightLayoutCache: @unchecked Sendable {
    public static let checkVariable = "LDM_CHECK_WEIGHT_CACHE"
    static let checksReuse = ProcessInfo.processInfo.environment[checkVariable] == "1"

    private struct Staged {
        let layout: dnnl_memory_desc_t
        let storage: TensorStorage
        /// The weight's values when staged (only while checking reuse).
        let original: [Float]?
    }

    /// Holding the source storage keeps its identity from being reused while it is a key.
    private struct Entry {
        let source: TensorStorage
        var staged: [Staged]
    }

    private var entries: [ObjectIdentifier: Entry] = [:]
    private let lock = NSLock()
    /// Reorders run through this cache, and uses served by an earlier one, since creation.
    public private(set) var reorders = 0, reuses = 0

    public init() {}

    /// Runs `body` with this cache in effect for the convolutions it runs on this thread.
    public func during<T>(_ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(Self.currentKey)
        // Unretained: `self` outlives `body`, and the previous cache outlives this call.
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.currentKey, previous) }
        return try body()
    }

    /// Drops every staged copy: call whenever the weights read through this cache may change.
    public func clear() {
        lock.lock()
        defer { lock.unlock() }
        entries.removeAll()
    }

    /// Runs `body` with a fresh cache, cleared when `body` returns: the window in which the
    /// weights it reads do not change (one training step's passes, one sampling run).
    public static func scoped<T>(_ body: () throws -> T) rethrows -> T {
        let cache = WeightLayoutCache()
        defer { cache.clear() }
        return try cache.during(body)
    }

    /// The weight in `layout`, reordered by `reorder` into a new buffer on first use.
    func staged(_ weight: TensorStorage, layout: dnnl_memory_desc_t, shape: [Int],
                reorder: (UnsafeMutablePointer<Float>) -> Void) -> TensorStorage {
        let key = ObjectIdentifier(weight)
        lock.lock()
        defer { lock.unlock() }
        if let entry = entries[key], let hit = entry.staged.first(where: { OneDNN.equal($0.layout, layout) }) {
            if let original = hit.original, Self.differs(weight, from: original) {
                preconditionFailure("convolution weight \(shape) changed while its reordered copy was cached: "
                                    + "the code that writes it must clear the WeightLayoutCache first")
            }
            reuses += 1
            return hit.storage
        }
        let storage = TensorStorage(count: OneDNN.floatCount(layout), zeroed: false)
        reorder(storage.pointer)
        reorders += 1
        let staged = Staged(layout: layout, storage: storage, original: Self.checksReuse ? Array(weight.buffer) : nil)
        entries[key, default: Entry(source: weight, staged: [])].staged.append(staged)
        return storage
    }

    /// Whether the weight's values are no longer `original`'s bits.
    static func differs(_ weight: TensorStorage, from original: [Float]) -> Bool {
        original.withUnsafeBytes { memcmp($0.baseAddress!, weight.pointer, $0.count) != 0 }
    }

    // The cache in effect, per thread: convolutions on other threads run without it.
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// The cache `during(_:)` put in effect on this thread, if any.
    static var current: WeightLayoutCache? {
        pthread_getspecific(currentKey).map { Unmanaged<WeightLayoutCache>.fromOpaque($0).takeUnretainedValue() }
    }
}
