import XCTest
import Tensor
@testable import NN

/// A Swift mirror of the torch module in Tests/Fixtures/generate_tiny_module_fixture.py:
/// the same names must load the torch weights and give torch's outputs and gradients.
private final class Tiny: Module {
    final class Mid: Module {
        let block1: Conv2d
        override class var keyOverrides: [String: String] { ["block1": "block_1"] }
        init(generator g: inout RandomGenerator) {
            block1 = Conv2d(4, 3, kernelSize: 3, stride: 2, padding: 1, generator: &g)
        }
    }

    let convIn: Conv2d
    let mid: Mid
    let projOut: Linear

    init(generator g: inout RandomGenerator) {
        convIn = Conv2d(2, 4, kernelSize: 3, padding: 1, generator: &g)
        mid = Mid(generator: &g)
        projOut = Linear(3, 5, generator: &g)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        projOut(mid.block1(convIn(x)).permuted([0, 2, 3, 1]))
    }
}

final class TorchModuleTests: XCTestCase {
    struct Fixture: Decodable {
        struct Entry: Decodable { let shape: [Int], values: [String] }
        let state_dict: [String: Entry], grads: [String: Entry]
        let input: Entry, output: Entry, projection: Entry
    }

    private func tensor(_ e: Fixture.Entry) -> Tensor {
        Tensor(shape: e.shape, scalars: hexDoubles(e.values).map { Float($0) })
    }

    func testLoadsTorchWeightsByNameAndReproducesOutputAndGradients() throws {
        let fx = try JSONDecoder().decode(Fixture.self, from: fixtureData("tiny_module.json"))
        var g = RandomGenerator(seed: 0)
        let model = Tiny(generator: &g)
        XCTAssertEqual(Set(model.stateDict().keys), Set(fx.state_dict.keys))
        try model.load(stateDict: fx.state_dict.mapValues(tensor))

        let y = model(tensor(fx.input))
        assertClose(y, tensor(fx.output), atol: 1e-5, rtol: 1e-5)
        (y * tensor(fx.projection)).sum().backward()
        for (name, p) in model.namedParameters() {
            guard let expected = fx.grads[name] else { XCTFail("no torch gradient for \(name)"); continue }
            assertClose(p.grad!, tensor(expected), atol: 1e-4, rtol: 1e-4)
        }
    }
}
