import XCTest
@testable import Tensor

/// Values and gradients from PyTorch (Tests/Fixtures/generate_nnops.py) for the NN ops.
final class TorchReferenceTests: XCTestCase {
    struct Entry: Decodable {
        let shape: [Int]
        let values: [Float]
        var tensor: Tensor { Tensor(shape: shape, scalars: values) }
    }

    static let cases: [String: [String: AnyDecodable]] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/nnops_reference.json")
        guard let data = try? Data(contentsOf: url) else { fatalError("missing fixture \(url.path)") }
        struct File: Decodable { let cases: [String: [String: AnyDecodable]] }
        do { return try JSONDecoder().decode(File.self, from: data).cases } catch {
            fatalError("cannot decode \(url.path): \(error)")
        }
    }()

    /// A JSON value that is a tensor entry, a number, or a Bool matrix.
    enum AnyDecodable: Decodable {
        case tensor(Entry), number(Double), mask([[Bool]])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let e = try? c.decode(Entry.self) { self = .tensor(e) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else { self = .mask(try c.decode([[Bool]].self)) }
        }
    }

    func tensor(_ name: String, _ key: String) -> Tensor {
        guard case .tensor(let e)? = Self.cases[name]?[key] else { fatalError("fixture \(name).\(key) is not a tensor") }
        return e.tensor
    }

    func number(_ name: String, _ key: String) -> Double {
        guard case .number(let n)? = Self.cases[name]?[key] else { fatalError("fixture \(name).\(key) is not a number") }
        return n
    }

    /// Gradients of Σ f(inputs)·projection, as the fixture computes them.
    func grads(_ inputs: [Tensor], projection: Tensor, _ f: ([Tensor]) -> Tensor) -> (Tensor, [Tensor]) {
        for x in inputs { x.requiresGrad = true }
        let y = f(inputs)
        return (y, gradients(of: y, wrt: inputs, seed: projection).map { $0! })
    }

    func testGroupNormAndFusedSiLU() {
        for name in ["groupNorm", "groupNormSiLU"] {
            let groups = Int(number(name, "groups")), eps = Float(number(name, "eps"))
            let (y, g) = grads([tensor(name, "x"), tensor(name, "weight"), tensor(name, "bias")],
                               projection: tensor(name, "projection")) { xs in
                name == "groupNorm" ? xs[0].groupNorm(groups: groups, weight: xs[1], bias: xs[2], eps: eps)
                                    : xs[0].groupNormSiLU(groups: groups, weight: xs[1], bias: xs[2], eps: eps)
            }
            assertClose(y, tensor(name, "out"), atol: 1e-5)
            assertClose(g[0], tensor(name, "gradX"), atol: 1e-5)
            assertClose(g[1], tensor(name, "gradWeight"), atol: 1e-5)
            assertClose(g[2], tensor(name, "gradBias"), atol: 1e-5)
        }
    }

    func testLayerNorm() {
        let (y, g) = grads([tensor("layerNorm", "x"), tensor("layerNorm", "weight"), tensor("layerNorm", "bias")],
                           projection: tensor("layerNorm", "projection")) { xs in
            xs[0].layerNorm(weight: xs[1], bias: xs[2], eps: Float(self.number("layerNorm", "eps")))
        }
        assertClose(y, tensor("layerNorm", "out"), atol: 1e-5)
        assertClose(g[0], tensor("layerNorm", "gradX"), atol: 1e-5)
        assertClose(g[1], tensor("layerNorm", "gradWeight"), atol: 1e-5)
        assertClose(g[2], tensor("layerNorm", "gradBias"), atol: 1e-5)
    }

    func testBatchNormTrainingAndEvaluation() {
        let c = "batchNorm"
        let runningMean = tensor(c, "runningMean"), runningVar = tensor(c, "runningVar")
        let y = tensor(c, "x").batchNorm(weight: tensor(c, "weight"), bias: tensor(c, "bias"), runningMean: runningMean,
                                         runningVar: runningVar, training: true, momentum: 0.1, eps: 1e-5)
        assertClose(y, tensor(c, "out"), atol: 1e-5)
        assertClose(runningMean, tensor(c, "updatedMean"), atol: 1e-6)
        assertClose(runningVar, tensor(c, "updatedVar"), atol: 1e-6)
        let e = tensor(c, "x").batchNorm(weight: tensor(c, "weight"), bias: tensor(c, "bias"), runningMean: runningMean,
                                         runningVar: runningVar, training: false)
        assertClose(e, tensor(c, "evalOut"), atol: 1e-5)
    }

    func testActivations() {
        let x = tensor("activations", "x")
        assertClose(x.gelu(), tensor("activations", "gelu"), atol: 1e-5)
        assertClose(x.gelu(approximateTanh: true), tensor("activations", "geluTanh"), atol: 1e-5)
        assertClose(x.softplus(), tensor("activations", "softplus"), atol: 1e-5)
        assertClose(x.silu(), tensor("activations", "silu"), atol: 1e-5)
        assertClose(x.sigmoid(), tensor("activations", "sigmoid"), atol: 1e-6)
        assertClose(tensor("geglu", "x").geglu(), tensor("geglu", "out"), atol: 1e-5)
        assertClose(tensor("softmax", "x").softmax(), tensor("softmax", "softmax"), atol: 1e-6)
        assertClose(tensor("softmax", "x").logSoftmax(alongAxis: -1), tensor("softmax", "logSoftmax"), atol: 1e-5)
    }

    func testMaskedMultiHeadCrossAttention() {
        let c = "attention"
        guard case .mask(let mask)? = Self.cases[c]?["mask"] else { return XCTFail("fixture attention.mask missing") }
        let heads = Int(number(c, "heads"))
        let (y, g) = grads([tensor(c, "q"), tensor(c, "k"), tensor(c, "v")], projection: tensor(c, "projection")) { xs in
            Tensor.scaledDotProductAttention(query: xs[0], key: xs[1], value: xs[2], heads: heads, keyPaddingMask: mask)
        }
        assertClose(y, tensor(c, "out"), atol: 1e-5)
        assertClose(g[0], tensor(c, "gradQ"), atol: 1e-5)
        assertClose(g[1], tensor(c, "gradK"), atol: 1e-5)
        assertClose(g[2], tensor(c, "gradV"), atol: 1e-5)
    }
}
