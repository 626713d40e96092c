import Tensor

/// A neural-network building block whose tensors are found by name, as in PyTorch.
///
/// Subclasses just declare stored properties; traversal reads them with `Mirror`, in
/// declaration order (superclass properties first), so names and order are deterministic:
///
/// - `Tensor` (or `Tensor?`, nil skipped) → a parameter named after the property;
/// - `@Buffer var runningMean: Tensor` → a buffer (saved, never optimised);
/// - `Module` / `Module?` → a child, whose members are prefixed with `name.`;
/// - `[Module]` / `[Tensor]` → children or parameters named `name.0`, `name.1`, …;
/// - anything else (ints, floats, closures) is configuration and ignored.
///
/// The key is the property name in snake_case (`convOut` → `conv_out`); a subclass overrides
/// `keyOverrides` for names that rule cannot produce. So `encoder.mid.block_1.conv1.weight`
/// is spelled `encoder` → `mid` → `block1` (with `["block1": "block_1"]`) → `conv1` → `weight`.
/// A subclass whose children cannot be stored properties (e.g. `Sequential`, whose children
/// are named "0", "1", …) overrides `namedMembers()` instead.
///
/// Every stored `Tensor` property is a parameter: keep non-persistent constants out of
/// stored `Tensor` properties (compute them, or keep them as `[Float]`). Do not store a
/// reference to a parent module (it would be traversed as a child; cycles are cut, but the
/// names would be wrong).
open class Module {
    /// Training mode (dropout active, BatchNorm uses batch statistics). Set with
    /// `train()` / `eval()`, which propagate to every descendant.
    public private(set) var isTraining = true

    public init() {}

    /// Checkpoint keys for properties whose snake_case name is not the reference's, by Swift
    /// property name: `override class var keyOverrides: [String: String] { ["block1": "block_1"] }`.
    /// A subclass of a class that has overrides merges them: `super.keyOverrides.merging(…)`.
    open class var keyOverrides: [String: String] { [:] }

    /// This module's own members, in declaration order. Override only for containers whose
    /// children are not stored properties.
    open func namedMembers() -> [(String, ModuleMember)] {
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let m = mirror {
            mirrors.append(m)
            mirror = m.superclassMirror
        }
        var members: [(String, ModuleMember)] = []
        let overrides = Self.keyOverrides
        for m in mirrors.reversed() {
            for child in m.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") && child.value is Buffer { label.removeFirst() }  // wrapper storage
                let key = overrides[label] ?? checkpointKey(forPropertyName: label)
                Module.classify(child.value, key: key, into: &members)
            }
        }
        return members
    }

    static func classify(_ value: Any, key: String, into members: inout [(String, ModuleMember)]) {
        if let buffer = value as? Buffer {
            members.append((key, .buffer(buffer.wrappedValue)))
        } else if let tensor = value as? Tensor {
            members.append((key, .parameter(tensor)))
        } else if let module = value as? Module {
            members.append((key, .module(module)))
        } else if let modules = value as? [Module] {
            for (i, module) in modules.enumerated() { members.append(("\(key).\(i)", .module(module))) }
        } else if let tensors = value as? [Tensor] {
            for (i, tensor) in tensors.enumerated() { members.append(("\(key).\(i)", .parameter(tensor))) }
        }
    }

    /// Visits every parameter and buffer of this module and its descendants with its full
    /// dotted name, depth first in declaration order. A module that is its own ancestor is
    /// not entered again.
    public func visitTensors(_ body: (String, Tensor, _ isBuffer: Bool) -> Void) {
        var ancestors = Set<ObjectIdentifier>()
        walk(prefix: "", ancestors: &ancestors, tensor: body, module: { _, _ in })
    }

    private func walk(prefix: String, ancestors: inout Set<ObjectIdentifier>,
                      tensor: (String, Tensor, Bool) -> Void, module: (String, Module) -> Void) {
        let id = ObjectIdentifier(self)
        guard ancestors.insert(id).inserted else { return }
        defer { ancestors.remove(id) }
        module(prefix, self)
        for (name, member) in namedMembers() {
            let full = prefix.isEmpty ? name : prefix + "." + name
            switch member {
            case .parameter(let t): tensor(full, t, false)
            case .buffer(let t): tensor(full, t, true)
            case .module(let m): m.walk(prefix: full, ancestors: &ancestors, tensor: tensor, module: module)
            }
        }
    }

    /// This module (named "") and every descendant, depth first.
    public func namedModules() -> [(String, Module)] {
        var result: [(String, Module)] = []
        var ancestors = Set<ObjectIdentifier>()
        walk(prefix: "", ancestors: &ancestors, tensor: { _, _, _ in }, module: { result.append(($0, $1)) })
        return result
    }

    /// Parameters with their dotted names, in declaration order. A tensor shared by several
    /// modules is listed once, under its first name (as torch's `named_parameters`).
    public func namedParameters() -> [(String, Tensor)] {
        var seen = Set<ObjectIdentifier>()
        var result: [(String, Tensor)] = []
        visitTensors { name, t, isBuffer in
            if !isBuffer && seen.insert(ObjectIdentifier(t)).inserted { result.append((name, t)) }
        }
        return result
    }

    public func parameters() -> [Tensor] { namedParameters().map { $0.1 } }

    /// Buffers (saved, not optimised) with their dotted names.
    public func namedBuffers() -> [(String, Tensor)] {
        var result: [(String, Tensor)] = []
        visitTensors { name, t, isBuffer in if isBuffer { result.append((name, t)) } }
        return result
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Sets training mode on this module and every descendant.
    public func train(_ mode: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = mode }
    }

    /// Evaluation mode: `train(false)`.
    public func eval() { train(false) }

    /// Stops gradients to every parameter (requiresGrad = false), e.g. a frozen autoencoder.
    public func freeze() { for p in parameters() { p.requiresGrad = false } }

    /// Lets gradients flow to every parameter again.
    public func unfreeze() { for p in parameters() { p.requiresGrad = true } }

    /// Drops the accumulated gradients of every parameter.
    public func zeroGrad() { for p in parameters() { p.zeroGrad() } }

    /// Called on this module and every descendant after `load(stateDict:)` has written their
    /// tensors: a module that keeps something derived from its weights drops it here.
    open func weightsDidLoad() {}
}
