import Foundation
import Tensor

/// The gradient average of ranks that share a machine, through memory they all map instead
/// of MPI's messages: each rank writes its bucket into its own region, then averages one
/// slice of every element (summing the ranks' values in rank order) into a result region all
/// of them read. Per rank that is one write of the bucket, reads of a 1/size share of every
/// region, and one read of the result, where MPI's shared-memory transport moves every byte
/// through its own buffers as messages.
///
/// The sum runs in rank order on whichever rank owns the slice, so every rank reads the same
/// bits, and at two ranks they are the bits MPI's sum gives (a + b, then ÷ 2).
final class SharedMemoryAllreduce {
    let rank: Int
    let size: Int
    /// Floats each region holds.
    let capacity: Int
    private let memory: SharedMemory

    /// A collective: nil on every rank unless all ranks share a machine. Rank 0's region
    /// holds the result after its own contribution.
    static func make(communicator: Communicator, capacity: Int) throws -> SharedMemoryAllreduce? {
        let floats = communicator.rank == 0 ? 2 * capacity : capacity
        guard let memory = try communicator.sharedMemory(bytes: floats * MemoryLayout<Float>.stride) else { return nil }
        return SharedMemoryAllreduce(memory: memory, rank: communicator.rank, size: communicator.size, capacity: capacity)
    }

    private init(memory: SharedMemory, rank: Int, size: Int, capacity: Int) {
        self.memory = memory
        self.rank = rank
        self.size = size
        self.capacity = capacity
    }

    /// Rank `r`'s region (`capacity` floats that are its own; rank 0's is followed by the result).
    func contribution(of r: Int) -> UnsafeMutablePointer<Float> {
        memory.region(of: r).assumingMemoryBound(to: Float.self)
    }

    /// Returns once every rank has called it, every rank's writes then visible to all. A collective.
    func synchronize() throws { try memory.synchronize() }

    /// Where this rank writes its values before `average(count:)`.
    var contribution: UnsafeMutablePointer<Float> { contribution(of: rank) }

    /// The mean over ranks, after `average(count:)`; read-only until the next call.
    var result: UnsafePointer<Float> { UnsafePointer(contribution(of: 0) + capacity) }

    /// The first `count` floats of every rank's contribution, summed in rank order and
    /// divided by the number of ranks, into `result`. A collective: every rank calls it with
    /// the same count, after writing its contribution.
    func average(count: Int) throws {
        precondition(count <= capacity, "shared-memory allreduce of \(count) floats; the regions hold \(capacity)")
        try memory.synchronize()  // every contribution written
        let slice = SharedMemoryAllreduce.slice(of: count, rank: rank, size: size)
        let inputs = (0..<size).map { UnsafePointer(contribution(of: $0)) }
        let out = contribution(of: 0) + capacity
        let divisor = Float(size)
        Parallel.forRange(slice.count, grain: 1 << 15) { range in
            let r = (slice.lowerBound + range.lowerBound)..<(slice.lowerBound + range.upperBound)
            SharedMemoryAllreduce.average(inputs, into: out, range: r, divisor: divisor)
        }
        try memory.synchronize()  // every slice of the result written
    }

    /// `rank`'s share of `count` elements, cut at 64-byte lines so that no two ranks write
    /// the same cache line.
    static func slice(of count: Int, rank: Int, size: Int) -> Range<Int> {
        func boundary(_ r: Int) -> Int { r == size ? count : min(count, (count * r / size) & ~15) }
        return boundary(rank)..<boundary(rank + 1)
    }

    /// out[i] = (((in₀[i] + in₁[i]) + in₂[i]) + …) / divisor: the sum in rank order, one pass per
    /// rank beyond the second (each a loop the compiler vectorises).
    static func average(_ inputs: [UnsafePointer<Float>], into out: UnsafeMutablePointer<Float>, range: Range<Int>,
                        divisor: Float) {
        let a = inputs[0], b = inputs[1]
        if inputs.count == 2 {
            for i in range { out[i] = (a[i] + b[i]) / divisor }
            return
        }
        for i in range { out[i] = a[i] + b[i] }
        for q in inputs.indices.dropFirst(2).dropLast() {
            let c = inputs[q]
            for i in range { out[i] += c[i] }
        }
        let last = inputs[inputs.count - 1]
        for i in range { out[i] = (out[i] + last[i]) / divisor }
    }
}
