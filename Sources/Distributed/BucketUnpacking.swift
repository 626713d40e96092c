import Tensor

/// The last step of reducing a gradient bucket, shared by the blocking and the overlapped
/// paths so both write the same bits: the bucket holds the sum over ranks; divide it by the
/// number of ranks and copy each parameter's slice back into its gradient.
func unpackAveragedGradients<Indices: Sequence<Int>>(from flat: UnsafeMutablePointer<Float>, elementCount: Int,
                                                     worldSize: Float, into parameters: [Tensor],
                                                     indices: Indices, offsets: [Int]) {
    Parallel.forRange(elementCount, grain: 1 << 16) { range in
        for j in range { flat[j] /= worldSize }
    }
    copyBucketGradients(from: UnsafePointer(flat), into: parameters, indices: indices, offsets: offsets)
}

/// Each parameter's slice of an averaged bucket into its gradient (created where the
/// parameter had none).
func copyBucketGradients<Indices: Sequence<Int>>(from flat: UnsafePointer<Float>, into parameters: [Tensor],
                                                 indices: Indices, offsets: [Int]) {
    for (i, offset) in zip(indices, offsets) {
        let p = parameters[i]
        let g = p.grad ?? Tensor(uninitialized: p.shape)
        g.pointer.update(from: flat + offset, count: p.count)
        p.grad = g
    }
}
