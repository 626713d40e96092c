// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LatentDiffusion",
    products: [
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "Data", targets: ["Data"]),
        .library(name: "Distributed", targets: ["Distributed"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
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

        // Data-parallel communication: MPI or a single process behind one protocol.
        .target(name: "Distributed", dependencies: ["Tensor", "CMPI"]),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        // Multi-rank scenarios that DistributedTests launch under `mpirun -np 2`.
        .executableTarget(name: "MPITestHarness", dependencies: ["Distributed", "Tensor"], path: "Tests/MPITestHarness"),

        // Datasets: IDX files, PNG image folders, preprocessing, batching, image grids.
        .target(name: "Data", dependencies: ["Tensor", "CZlib", "CPNG"]),
        .testTarget(name: "DataTests", dependencies: ["Data"]),

        // Image quality metrics, rank-aware metric reduction, JSON reports.
        .target(name: "Evaluation", dependencies: ["Tensor", "Distributed"]),
        // Fixtures are read through #filePath; the generator is Tests/Fixtures/generate_ssim_fixture.py.
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"], exclude: ["Fixtures"]),

        // Side-by-side performance runs: `swift run -c release Benchmarks`.
        .executableTarget(name: "Benchmarks", dependencies: ["Tensor"], path: "Benchmarks"),
    ],
    swiftLanguageModes: [.v5]
)
