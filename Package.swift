// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LatentDiffusion",
    products: [
        .library(name: "Tensor", targets: ["Tensor"]),
    ],
    targets: [
        // System libraries (Debian packages, found through pkg-config).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Tensor engine: storage, kernels, autograd. Knows nothing about diffusion.
        .target(name: "Tensor", dependencies: ["CBLAS"]),

        // Fixtures are read through #filePath, not bundled.
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], exclude: ["Fixtures"]),

        // Side-by-side performance runs: `swift run -c release Benchmarks`.
        .executableTarget(name: "Benchmarks", dependencies: ["Tensor"], path: "Benchmarks"),
    ],
    swiftLanguageModes: [.v5]
)
