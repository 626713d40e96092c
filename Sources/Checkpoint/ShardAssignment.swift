/// Which rank writes which tensors of a sharded file set (optimizer moments, EMA shadows).
///
/// Contiguous runs of the ordered tensors, balanced by element count: tensor i goes to the
/// rank whose share of the total contains the middle of i's elements. The split depends only
/// on the element counts and the world size, so every rank computes the same one, and a
/// reader does not need it at all (it merges whatever the shards hold).
public enum ShardAssignment {
    /// For each of `parts` ranks, the indices of the tensors it writes (possibly empty).
    public static func contiguous(elementCounts: [Int], parts: Int) -> [Range<Int>] {
        precondition(parts >= 1, "ShardAssignment: \(parts) parts; need at least 1")
        let total = elementCounts.reduce(0, +)
        var owners: [Int] = []
        var before = 0
        for count in elementCounts {
            let middle = Double(before) + Double(count) / 2
            owners.append(total == 0 ? 0 : min(parts - 1, Int(middle * Double(parts) / Double(total))))
            before += count
        }
        return (0..<parts).map { part in
            let first = owners.firstIndex { $0 >= part } ?? owners.count
            let end = owners.firstIndex { $0 > part } ?? owners.count
            return first..<max(first, end)
        }
    }
}
