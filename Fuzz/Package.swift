// swift-tools-version:6.0
// libFuzzer targets for every reader of outside bytes. Built and run by Launch/fuzz.sh with
// `--sanitize=fuzzer --sanitize=address`; kept out of the main package so its build and tests
// are unaffected.
import PackageDescription

// A path dependency's identity is its directory's name, which differs between checkouts.
let root = Context.packageDirectory.split(separator: "/").dropLast().last.map(String.init) ?? ".."

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: root) })
}

let package = Package(
    name: "LatentDiffusionFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("FuzzSafeTensors", ["Checkpoint"]),
        fuzzTarget("FuzzLatentShard", ["LatentCache"]),
        fuzzTarget("FuzzShardSidecar", ["LatentCache"]),
        fuzzTarget("FuzzCacheManifest", ["LatentCache"]),
        fuzzTarget("FuzzCheckpointManifest", ["Checkpoint"]),
        fuzzTarget("FuzzTrainerState", ["Training"]),
        fuzzTarget("FuzzIDX", ["Data"]),
        fuzzTarget("FuzzPNG", ["Data"]),
        fuzzTarget("FuzzConfig", ["Training"]),
        fuzzTarget("FuzzDiffusersConfig", ["Models"]),
        fuzzTarget("FuzzTokenizer", ["Models"]),
    ],
    swiftLanguageModes: [.v5]
)
