/// Blosc-style byte shuffle: the k-th byte of every element is grouped together, so the
/// slowly varying sign/exponent bytes of neighbouring floats form long, compressible runs
/// that the mantissa noise would otherwise break up.
///
/// `shuffle` turns `count` elements of `elementSize` bytes (e0b0 e0b1 e1b0 e1b1 …) into
/// planes (e0b0 e1b0 … e0b1 e1b1 …); `unshuffle` is its inverse.
public enum ByteShuffle {
    public static func shuffle(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer,
                               count: Int, elementSize: Int) {
        precondition(count >= 0 && elementSize >= 1, "ByteShuffle.shuffle: count \(count), element size \(elementSize)")
        let src = source.assumingMemoryBound(to: UInt8.self), dst = destination.assumingMemoryBound(to: UInt8.self)
        for b in 0..<elementSize {
            let plane = dst + b * count
            var s = src + b
            for i in 0..<count {
                plane[i] = s.pointee
                s += elementSize
            }
        }
    }

    public static func unshuffle(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer,
                                 count: Int, elementSize: Int) {
        precondition(count >= 0 && elementSize >= 1, "ByteShuffle.unshuffle: count \(count), element size \(elementSize)")
        let src = source.assumingMemoryBound(to: UInt8.self), dst = destination.assumingMemoryBound(to: UInt8.self)
        for b in 0..<elementSize {
            let plane = src + b * count
            var d = dst + b
            for i in 0..<count {
                d.pointee = plane[i]
                d += elementSize
            }
        }
    }
}
