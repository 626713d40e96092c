/// Reverse-mode automatic differentiation, define-by-run.
///
/// Every differentiable op that sees an input requiring gradients attaches a `GradNode` to its
/// output: the inputs and a closure mapping the output's gradient to the inputs' gradients.
/// The graph lives exactly as long as some tensor refers to its output, so activations are
/// freed when the loss is dropped. Backward passes never destroy the graph, so several losses
/// over one graph can each be differentiated (as the adaptive GAN weight needs).
public final class GradNode {
    public let name: String
    public let inputs: [Tensor]
    /// Given the output gradient, returns one gradient per input (nil where not needed).
    let backward: (Tensor) -> [Tensor?]

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

/// Hears how a `backward(observer:)` pass progresses, e.g. to start reducing finished
/// gradients across ranks while the rest of the pass computes.
public protocol BackwardObserver: AnyObject {
    /// Before the pass: every leaf it can reach (any other leaf's `grad` stays as it is).
    func backwardWillStart(leaves: [Tensor])
    /// `leaf.grad` now includes this pass's whole contribution.
    func gradientReady(_ leaf: Tensor)
    /// Called before each node's backward rule runs: a chance to let communication progress.
    func betweenNodes()
}

/// Whether operations are recorded for autograd.
public enum GradMode {
    public private(set) static var isEnabled = true

    /// Runs `body` without recording (inference, EMA updates, metrics).
    public static func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        let previous = isEnabled
        isEnabled = false
        defer { isEnabled = previous }
        return try body()
    }
}

public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T { try GradMode.withoutGrad(body) }

extension Tensor {
    /// Attaches a backward rule to `self` if recording is on and any input requires gradients.
    /// Ops call this on the tensor they return.
    @discardableResult
    public func recorded(_ name: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        if OpProfiler.isEnabled { OpProfiler.forwardOp(name) }
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        requiresGrad = true
        gradNode = GradNode(name: name, inputs: inputs, backward: backward)
        return self
    }

    /// Accumulates d(self)/d(leaf) into `grad` of every leaf that requires gradients.
    /// `self` must be a scalar unless `seed` (the gradient of the output) is given.
    /// An `observer` hears of each leaf as soon as its gradient is complete (data-parallel
    /// training starts reducing it while the rest of the pass runs).
    public func backward(seed: Tensor? = nil, observer: BackwardObserver? = nil) {
        let leaves = OpProfiler.measure(.backward, "(graph walk)") { Autograd.collectLeaves(from: self) }
        observer?.backwardWillStart(leaves: leaves)
        // Each leaf is accumulated the moment the traversal has its whole gradient.
        _ = Autograd.gradients(of: self, with: seed, wrt: leaves, observer: observer) { leaf, g in
            OpProfiler.measure(.backward, "(leaf grads)") {
                if let existing = leaf.grad {
                    existing.addInPlace(g)
                } else {
                    // A copy, because backward rules may hand out a gradient that aliases another.
                    leaf.grad = g.copy()
                }
            }
            observer?.gradientReady(leaf)
        }
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}

/// The gradient of `output` with respect to each tensor in `inputs` (leaves or intermediates),
/// without touching any `.grad`. Only the part of the graph between them is traversed.
/// A nil entry means `output` does not depend on that input.
public func gradients(of output: Tensor, wrt inputs: [Tensor], seed: Tensor? = nil) -> [Tensor?] {
    Autograd.gradients(of: output, with: seed, wrt: inputs)
}

enum Autograd {
    /// Nodes reachable from `root`, ordered so each comes after every node that consumes it.
    static func topologicalOrder(from root: Tensor) -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (t, i) = stack.popLast() {
            let inputs = t.gradNode?.inputs ?? []
            if i < inputs.count {
                stack.append((t, i + 1))
                let next = inputs[i]
                if next.requiresGrad, visited.insert(ObjectIdentifier(next)).inserted {
                    stack.append((next, 0))
                }
            } else {
                order.append(t)
            }
        }
        return order.reversed()  // root first
    }

    static func collectLeaves(from root: Tensor) -> [Tensor] {
        topologicalOrder(from: root).filter { $0.isLeaf && $0.requiresGrad }
    }

    /// `completed`, when given, receives each target's gradient as soon as it is final (every
    /// node consuming the target has run); `observer` is told between nodes.
    static func gradients(of root: Tensor, with seed: Tensor?, wrt targets: [Tensor], observer: BackwardObserver? = nil,
                          completed: ((Tensor, Tensor) -> Void)? = nil) -> [Tensor?] {
        precondition(root.requiresGrad || targets.contains { $0 === root },
                     "backward: the output does not require gradients (nothing recorded it)")
        if seed == nil {
            precondition(root.count == 1, "backward without a seed needs a scalar output, shape is \(root.shape)")
        }
        let targetIDs = Set(targets.map(ObjectIdentifier.init))
        let (order, leadsToTarget) = OpProfiler.measure(.backward, "(graph walk)") {
            let order = topologicalOrder(from: root)
            // Keep only nodes on a path from root to some target.
            var leadsToTarget = Set<ObjectIdentifier>()
            for t in order.reversed() {
                let id = ObjectIdentifier(t)
                if targetIDs.contains(id) || (t.gradNode?.inputs.contains { leadsToTarget.contains(ObjectIdentifier($0)) } ?? false) {
                    leadsToTarget.insert(id)
                }
            }
            return (order, leadsToTarget)
        }

        var pending: [ObjectIdentifier: Tensor] = [:]
        var results: [ObjectIdentifier: Tensor] = [:]
        pending[ObjectIdentifier(root)] = seed ?? Tensor(repeating: 1, shape: root.shape)
        withoutGrad {
            for t in order {
                let id = ObjectIdentifier(t)
                guard leadsToTarget.contains(id), let g = pending.removeValue(forKey: id) else { continue }
                if targetIDs.contains(id) {
                    if let completed { completed(t, g) } else { results[id] = g }
                }
                guard let node = t.gradNode else { continue }
                observer?.betweenNodes()
                precondition(g.shape == t.shape, "\(node.name) backward: gradient shape \(g.shape) for output \(t.shape)")
                let inputGrads = OpProfiler.measure(.backward, node.name) { node.backward(g) }
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard let ig, input.requiresGrad, leadsToTarget.contains(ObjectIdentifier(input)) else { continue }
                    precondition(ig.shape == input.shape,
                                 "\(node.name) backward: gradient shape \(ig.shape) for input \(input.shape)")
                    let iid = ObjectIdentifier(input)
                    if let existing = pending[iid] {
                        // Never mutate a gradient another node may still hold.
                        pending[iid] = OpProfiler.measure(.backward, "(accumulate grads)") { existing.adding(ig) }
                    } else {
                        pending[iid] = ig
                    }
                }
            }
        }
        return targets.map { results[ObjectIdentifier($0)] }
    }
}
