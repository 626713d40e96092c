import XCTest
import Tensor
@testable import NN

// A miniature of the LDM autoencoder's naming: nested modules, lists of modules, optional
// children, @Key overrides, camelCase properties, buffers.
private final class Block: Module {
    let norm1: Linear
    let ninShortcut: Linear?
    init(shortcut: Bool, generator g: inout RandomGenerator) {
        norm1 = Linear(2, 2, generator: &g)
        ninShortcut = shortcut ? Linear(2, 2, bias: false, generator: &g) : nil
    }
}

private final class Level: Module {
    let block: [Block]
    init(generator g: inout RandomGenerator) {
        block = [Block(shortcut: false, generator: &g), Block(shortcut: true, generator: &g)]
    }
}

private final class Mid: Module {
    let block1: Block
    let attention: Linear
    override class var keyOverrides: [String: String] { ["block1": "block_1", "attention": "attn_1"] }
    init(generator g: inout RandomGenerator) {
        block1 = Block(shortcut: false, generator: &g)
        attention = Linear(2, 3, generator: &g)
    }
}

private final class Stats: Module {
    let weight = Tensor(repeating: 1, shape: [2], requiresGrad: true)
    @Buffer var runningMean: Tensor
    @Buffer var numBatchesTracked = Tensor(zeros: [1])
    @Buffer var renamed = Tensor(zeros: [1])
    override class var keyOverrides: [String: String] { ["renamed": "custom_name"] }
    override init() {
        runningMean = Tensor(zeros: [2])
    }
}

private final class Encoder: Module {
    let down: [Level]
    let mid: Mid
    let stats: Stats
    let convOut: Linear
    let notAParameter = 3
    init(generator g: inout RandomGenerator) {
        down = [Level(generator: &g)]
        mid = Mid(generator: &g)
        stats = Stats()
        convOut = Linear(3, 1, generator: &g)
    }
}

private class Base: Module {
    let first = Tensor(zeros: [1], requiresGrad: true)
}

private final class Derived: Base {
    let second = Tensor(zeros: [1], requiresGrad: true)
}

final class ModuleTests: XCTestCase {
    private func makeEncoder(seed: UInt64 = 0) -> Encoder {
        var g = RandomGenerator(seed: seed)
        return Encoder(generator: &g)
    }

    func testSnakeCaseKeys() {
        XCTAssertEqual(checkpointKey(forPropertyName: "convOut"), "conv_out")
        XCTAssertEqual(checkpointKey(forPropertyName: "numBatchesTracked"), "num_batches_tracked")
        XCTAssertEqual(checkpointKey(forPropertyName: "_runningMean"), "running_mean")
        XCTAssertEqual(checkpointKey(forPropertyName: "conv1"), "conv1")
        XCTAssertEqual(checkpointKey(forPropertyName: "q"), "q")
    }

    func testParameterNamesFollowTheReference() {
        let names = makeEncoder().namedParameters().map { $0.0 }
        XCTAssertEqual(names, [
            "down.0.block.0.norm1.weight", "down.0.block.0.norm1.bias",
            "down.0.block.1.norm1.weight", "down.0.block.1.norm1.bias", "down.0.block.1.nin_shortcut.weight",
            "mid.block_1.norm1.weight", "mid.block_1.norm1.bias",
            "mid.attn_1.weight", "mid.attn_1.bias",
            "stats.weight",
            "conv_out.weight", "conv_out.bias",
        ])
        XCTAssertEqual(makeEncoder().namedBuffers().map { $0.0 },
                       ["stats.running_mean", "stats.num_batches_tracked", "stats.custom_name"])
        XCTAssertEqual(Set(makeEncoder().stateDict().keys).count, 15)
    }

    func testSuperclassPropertiesComeFirst() {
        XCTAssertEqual(Derived().namedParameters().map { $0.0 }, ["first", "second"])
    }

    func testSequentialNamesChildrenByIndex() {
        var g = RandomGenerator(seed: 0)
        let s = Sequential(Linear(2, 3, generator: &g), Linear(3, 1, bias: false, generator: &g))
        XCTAssertEqual(s.namedParameters().map { $0.0 }, ["0.weight", "0.bias", "1.weight"])
        XCTAssertEqual(s(randn([4, 2])).shape, [4, 1])
    }

    func testSharedTensorsAreListedOnce() {
        var g = RandomGenerator(seed: 0)
        let shared = Linear(2, 2, generator: &g)
        let s = Sequential(shared, shared)
        XCTAssertEqual(s.namedParameters().map { $0.0 }, ["0.weight", "0.bias"])
        XCTAssertEqual(s.stateDict().count, 4, "the state dict keeps every name, as torch")
    }

    func testParameterCountAndFlags() {
        let e = makeEncoder()
        XCTAssertEqual(e.parameterCount, 6 + 6 + 4 + 6 + 9 + 2 + 4)
        XCTAssertTrue(e.parameters().allSatisfy { $0.requiresGrad })
        XCTAssertTrue(e.namedBuffers().allSatisfy { !$0.1.requiresGrad })
        e.eval()
        XCTAssertTrue(e.namedModules().allSatisfy { !$0.1.isTraining })
        // encoder, down.0, its two blocks (+1 and +2 linears), mid, block_1 (+1), attn_1, stats, conv_out
        XCTAssertEqual(e.namedModules().count, 1 + 1 + 2 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1)
        e.train()
        XCTAssertTrue(e.namedModules().allSatisfy { $0.1.isTraining })
    }

    func testStateDictRoundTrip() throws {
        let a = makeEncoder(seed: 1), b = makeEncoder(seed: 2)
        a.stats.runningMean.pointer[0] = 5
        XCTAssertNotEqual(a.convOut.weight.scalars, b.convOut.weight.scalars)
        let weightBefore = b.convOut.weight
        try b.load(stateDict: a.stateDict())
        for (name, t) in a.stateDict() { XCTAssertEqual(t.scalars, b.stateDict()[name]!.scalars, name) }
        XCTAssertTrue(b.convOut.weight === weightBefore, "load writes in place")
        XCTAssertEqual(b.stats.runningMean.scalars, [5, 0])
    }

    func testLoadErrorsNameTheKeys() {
        let m = makeEncoder()
        var dict = makeEncoder().stateDict()
        dict["conv_out.weight"] = Tensor(zeros: [2, 3])
        dict["mid.attn_1.bias"] = nil
        dict["decoder.extra"] = Tensor(zeros: [1])
        let before = m.convOut.bias!.scalars
        dict["conv_out.bias"] = Tensor(repeating: 7, shape: [1])
        XCTAssertThrowsError(try m.load(stateDict: dict)) { error in
            let problems = (error as? StateDictError)?.problems ?? []
            XCTAssertEqual(problems, [
                .shapeMismatch(key: "conv_out.weight", expected: [1, 3], got: [2, 3]),
                .missingKey("mid.attn_1.bias"),
                .unexpectedKey("decoder.extra"),
            ])
            XCTAssertTrue("\(error)".contains("conv_out.weight: expected [1, 3], got [2, 3]"), "\(error)")
        }
        XCTAssertEqual(m.convOut.bias!.scalars, before, "a failed load changes nothing")

        // Non-strict: missing and unexpected keys are reported, shape mismatches still fail.
        dict["conv_out.weight"] = Tensor(zeros: [1, 3])
        let result = try? m.load(stateDict: dict, strict: false)
        XCTAssertEqual(result, StateDictLoadResult(missingKeys: ["mid.attn_1.bias"], unexpectedKeys: ["decoder.extra"]))
        XCTAssertEqual(m.convOut.bias!.scalars, [7])
    }

    func testFreezeStopsGradients() {
        var g = RandomGenerator(seed: 3)
        let frozen = Linear(3, 3, generator: &g), trained = Linear(3, 1, generator: &g)
        frozen.freeze()
        let x = randn([2, 3], seed: 4)
        trained(frozen(x)).sum().backward()
        XCTAssertNil(frozen.weight.grad)
        XCTAssertNil(frozen.bias!.grad)
        XCTAssertNotNil(trained.weight.grad)
        trained.zeroGrad()
        XCTAssertNil(trained.weight.grad)
        frozen.unfreeze()
        trained(frozen(x)).sum().backward()
        XCTAssertNotNil(frozen.weight.grad)
    }
}
