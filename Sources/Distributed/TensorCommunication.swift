import Tensor

/// Collectives on whole tensors (in place; tensor storage is contiguous Float32).
extension Communicator {
    /// Overwrites each tensor with `root`'s values. Shapes must match across ranks.
    public func broadcast(_ tensors: [Tensor], root: Int) throws {
        for t in tensors { try broadcast(t.buffer, root: root) }
    }

    /// Replaces the tensor's values with their reduction over all ranks.
    public func allreduce(_ tensor: Tensor, op: ReduceOperation = .sum) throws {
        try allreduce(tensor.buffer, op: op)
    }

    /// Replaces the tensor's values with their mean over all ranks.
    public func allreduceMean(_ tensor: Tensor) throws {
        try allreduceMean(tensor.buffer)
    }
}
