import XCTest
@testable import Tensor

final class AutogradTests: XCTestCase {
    func testBackwardAccumulatesIntoLeaves() {
        let x = Tensor(shape: [3], scalars: [1, 2, 3], requiresGrad: true)
        let y = (x * x).sum()
        y.backward()
        XCTAssertEqual(x.grad?.scalars, [2, 4, 6])
        // A second backward over the same graph accumulates, as in PyTorch.
        y.backward()
        XCTAssertEqual(x.grad?.scalars, [4, 8, 12])
    }

    func testGradientsOfSeveralLossesOverOneGraph() {
        let w = Tensor(shape: [2], scalars: [1, -1], requiresGrad: true)
        let h = w * 3
        let loss1 = h.sum()
        let loss2 = (h * h).sum()
        let g1 = gradients(of: loss1, wrt: [w])[0]!
        let g2 = gradients(of: loss2, wrt: [w])[0]!
        XCTAssertEqual(g1.scalars, [3, 3])
        XCTAssertEqual(g2.scalars, [18, -18])
        XCTAssertNil(w.grad, "gradients(of:wrt:) must not touch .grad")
    }

    func testGradientWithRespectToInputsAndIntermediates() {
        let x = Tensor(shape: [2], scalars: [2, 3], requiresGrad: true)
        let mid = x * x
        let out = (mid * 2).sum()
        let grads = gradients(of: out, wrt: [mid, x])
        XCTAssertEqual(grads[0]?.scalars, [2, 2])
        XCTAssertEqual(grads[1]?.scalars, [8, 12])
    }

    func testFrozenTensorsGetNoGradient() {
        let frozen = Tensor(shape: [2], scalars: [1, 2])
        let x = Tensor(shape: [2], scalars: [3, 4], requiresGrad: true)
        (frozen * x).sum().backward()
        XCTAssertNil(frozen.grad)
        XCTAssertEqual(x.grad?.scalars, [1, 2])
    }

    func testNoGradRecordsNothing() {
        let x = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let y = withoutGrad { x * x }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertNil(y.gradNode)
        XCTAssertTrue(GradMode.isEnabled)
    }

    func testDiamondGraphSumsBothPaths() {
        let x = Tensor(shape: [1], scalars: [3], requiresGrad: true)
        let a = x * 2, b = x * x
        (a + b).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [8])  // 2 + 2x
    }

    func testGraphIsFreedWithTheLoss() {
        weak var weakActivation: Tensor?
        let x = Tensor(shape: [4], scalars: [1, 2, 3, 4], requiresGrad: true)
        do {
            let activation = x.exp()
            weakActivation = activation
            let loss = activation.sum()
            loss.backward()
        }
        XCTAssertNil(weakActivation, "activations must be released once nothing refers to the loss")
    }
}
