import Tensor

/// Why a state dict could not be loaded: every problem found, so one run shows them all.
public struct StateDictError: Error, CustomStringConvertible {
    public enum Problem: Equatable, CustomStringConvertible {
        case missingKey(String)
        case unexpectedKey(String)
        case shapeMismatch(key: String, expected: [Int], got: [Int])

        public var description: String {
            switch self {
            case .missingKey(let k): return "\(k): missing from the state dict"
            case .unexpectedKey(let k): return "\(k): unexpected key (the module has no such tensor)"
            case .shapeMismatch(let k, let expected, let got): return "\(k): expected \(expected), got \(got)"
            }
        }
    }

    public let problems: [Problem]

    public var description: String {
        "cannot load state dict (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
            + problems.map { "  " + $0.description }.joined(separator: "\n")
    }
}

/// Keys a non-strict load skipped.
public struct StateDictLoadResult: Equatable {
    public var missingKeys: [String]
    public var unexpectedKeys: [String]
}

extension Module {
    /// Parameters and buffers by dotted name. The tensors are the module's own (shared
    /// storage, as torch's `state_dict`): copy them if a snapshot is needed.
    public func stateDict() -> [String: Tensor] {
        var dict: [String: Tensor] = [:]
        visitTensors { name, t, _ in dict[name] = t }
        return dict
    }

    /// Parameters and buffers with their names, in traversal order (for writing files in a
    /// stable order).
    public func orderedStateDict() -> [(String, Tensor)] {
        var list: [(String, Tensor)] = []
        visitTensors { name, t, _ in list.append((name, t)) }
        return list
    }

    /// Copies values from `stateDict` into this module's tensors, in place (so optimisers
    /// holding the parameters stay valid). Shape mismatches are always errors; missing and
    /// unexpected keys are errors when `strict`, else reported in the result. Nothing is
    /// written unless the whole load is valid.
    @discardableResult
    public func load(stateDict: [String: Tensor], strict: Bool = true) throws -> StateDictLoadResult {
        let own = orderedStateDict()
        var problems: [StateDictError.Problem] = []
        var missing: [String] = []
        var pairs: [(Tensor, Tensor)] = []
        for (name, target) in own {
            guard let source = stateDict[name] else { missing.append(name); continue }
            if source.shape != target.shape {
                problems.append(.shapeMismatch(key: name, expected: target.shape, got: source.shape))
            } else {
                pairs.append((target, source))
            }
        }
        let ownNames = Set(own.map { $0.0 })
        let unexpected = stateDict.keys.filter { !ownNames.contains($0) }.sorted()
        if strict {
            problems += missing.map { .missingKey($0) }
            problems += unexpected.map { .unexpectedKey($0) }
        }
        guard problems.isEmpty else { throw StateDictError(problems: problems) }
        for (target, source) in pairs where target !== source { target.assign(source) }
        for (_, module) in namedModules() { module.weightsDidLoad() }
        return StateDictLoadResult(missingKeys: missing, unexpectedKeys: unexpected)
    }
}
