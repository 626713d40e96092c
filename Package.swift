// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LatentDiffusion",
    products: [
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Data", targets: ["Data"]),
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

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),

        // Modules with parameters found by name, layers, optimisers, EMA.
        .target(name: "NN", dependencies: ["Tensor"]),
        .testTarget(name: "NNTests", dependencies: ["NN"], exclude: ["Fixtures"]),

        // Datasets: IDX files, PNG image folders, preprocessing, batching, image grids.
        .target(name: "Data", dependencies: ["Tensor", "CZlib", "CPNG"]),
        .testTarget(name: "DataTests", dependencies: ["Data"]),

        // Side-by-side performance runs: `swift run -c release Benchmarks`.
        .executableTarget(name: "Benchmarks", dependencies: ["Tensor"], path: "Benchmarks"),
    ],
    swiftLanguageModes: [.v5]
)
