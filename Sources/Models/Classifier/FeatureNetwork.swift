import Foundation
import Checkpoint
import Tensor

/// A feature space the generation metrics are computed in. Every report names the network
/// and its fingerprint, so numbers are only compared between reports of the same one.
public protocol FeatureNetwork {
    /// e.g. "classifier" or "vgg16-relu5_3".
    var name: String { get }
    /// Identifies the weights (a hash of the weights file).
    var fingerprint: String { get }
    var featureDimension: Int { get }
    /// Features [N, d] of images [N, C, H, W] in [−1, 1]; no gradients.
    func features(_ images: Tensor) -> Tensor
}

/// The evaluation classifier's pooled last-level activations.
public struct ClassifierFeatures: FeatureNetwork {
    public let classifier: EvaluationClassifier
    public let fingerprint: String
    public var name: String { "classifier" }
    public var featureDimension: Int { classifier.config.featureDimension }

    public init(classifier: EvaluationClassifier, fingerprint: String) {
        self.classifier = classifier
        self.fingerprint = fingerprint
    }

    public func features(_ images: Tensor) -> Tensor { withoutGrad { classifier(images).features } }
}

/// LPIPS's pretrained VGG16 (ImageNet), relu5_3 averaged over space: a feature space that
/// needs no training on the data, 512-dimensional.
public struct VGGFeatures: FeatureNetwork {
    public let lpips: LPIPS
    public let fingerprint: String
    public var name: String { "vgg16-relu5_3" }
    public var featureDimension: Int { 512 }

    public init(lpips: LPIPS, fingerprint: String) {
        self.lpips = lpips
        self.fingerprint = fingerprint
    }

    /// Loads the LPIPS weights file (Launch/fetch_lpips_weights.sh) and fingerprints it.
    public static func load(from url: URL) throws -> VGGFeatures {
        let lpips = try LPIPS.pretrained(at: url)
        let bytes = try Data(contentsOf: url, options: .alwaysMapped)
        return VGGFeatures(lpips: lpips, fingerprint: XXH64.hexString(XXH64.hash(bytes)))
    }

    public func features(_ images: Tensor) -> Tensor {
        withoutGrad { lpips.features(of: images).last!.mean(alongAxes: [2, 3]) }
    }
}
