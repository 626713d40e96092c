// Row lookup in an embedding table, with a scatter-add backward.

extension Tensor {
    /// Rows `indices` of `table` [V, D] → [indices.count, D].
    public static func embedding(table: Tensor, indices: [Int]) -> Tensor {
        precondition(table.rank == 2, "embedding: table must be [V, D], got \(table.shape)")
        let vocabulary = table.shape[0], width = table.shape[1]
        for (position, index) in indices.enumerated() {
            precondition(index >= 0 && index < vocabulary,
                         "embedding: index \(index) at position \(position) is out of range 0..<\(vocabulary)")
        }
        let out = Tensor(uninitialized: [indices.count, width])
        let tp = table.pointer, op = out.pointer
        indices.withUnsafeBufferPointer { idx in
            Parallel.forRange(indices.count, grain: max(1, 16384 / max(width, 1))) { r in
                for i in r { (op + i * width).update(from: tp + idx[i] * width, count: width) }
            }
        }
        return out.recorded("embedding", inputs: [table]) { g in
            // Repeated indices accumulate; columns are split across cores so no two threads
            // write the same element and the summation order is fixed.
            let grad = Tensor(zeros: table.shape)
            let gp = g.pointer, dp = grad.pointer
            indices.withUnsafeBufferPointer { idx in
                Parallel.forRange(width, grain: max(1, 16384 / max(indices.count, 1))) { cols in
                    for i in 0..<idx.count {
                        let src = gp + i * width, dst = dp + idx[i] * width
                        for j in cols { dst[j] += src[j] }
                    }
                }
            }
            return [grad]
        }
    }
}
