import Checkpoint
import Distributed
import Foundation

/// Before the first step every rank shows the others what it is about to train with (its
/// config, its data's identity and content digest), and the job stops if any rank's differs
/// from rank 0's. A hostfile node with another copy of the dataset, or an edited config on
/// one machine, would otherwise train silently on other data: gradients are averaged whatever
/// they were computed from, and the replica digests stay equal because weights are shared.
enum RankConsistency {
    /// One fact per name, as this rank sees it; `host` only names the rank in the error.
    struct Facts: Codable, Equatable {
        var host: String
        var values: [String: String]
    }

    /// Every rank gets every rank's facts (one variable-length allgather) and throws the same
    /// error when any differ, so the job ends the same way on every rank.
    static func verify(_ values: [String: String], communicator: Communicator,
                       host: String = ProcessInfo.processInfo.hostName) throws {
        guard communicator.size > 1 else { return }
        let mine = try JSONEncoder().encode(Facts(host: host, values: values))
        let all = try communicator.allgather(mine).enumerated().map { rank, data in
            do { return try JSONDecoder().decode(Facts.self, from: data) } catch {
                throw RankMismatchError(lines: ["rank \(rank): unreadable start-up facts (\(error))"])
            }
        }
        let lines = mismatches(all)
        guard lines.isEmpty else { throw RankMismatchError(lines: lines) }
    }

    /// One line for each rank and fact that differs from rank 0's.
    static func mismatches(_ all: [Facts]) -> [String] {
        guard let reference = all.first else { return [] }
        var lines: [String] = []
        for (rank, facts) in all.enumerated().dropFirst() {
            for name in Set(reference.values.keys).union(facts.values.keys).sorted()
            where facts.values[name] != reference.values[name] {
                lines.append("rank \(rank) (host \(facts.host)): \(name) is \(facts.values[name].map { "'\($0)'" } ?? "missing"), "
                    + "rank 0 (host \(reference.host)) has \(reference.values[name].map { "'\($0)'" } ?? "none")")
            }
        }
        return lines
    }
}

/// Ranks that would train on different configs or data.
struct RankMismatchError: Error, CustomStringConvertible {
    let lines: [String]
    var description: String {
        "ranks disagree before training (every rank must see the same config and the same data; "
            + "check each node's copy):\n  " + lines.joined(separator: "\n  ")
    }
}
