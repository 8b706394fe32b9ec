// swift-tools-version:6.0
import PackageDescription

// A release build links libcurl, c-ares, OpenSSL, zlib and libyaml statically and passes the
// archives to the linker itself (scripts/build-release). Development builds and tests
// link Debian's shared libraries.
let linksStaticDependencies = Context.environment["STATIC_DEPS"] != nil

let package = Package(
    name: "llmops-ci",
    products: [
        .executable(name: "llmops-ci", targets: ["llmops-ci"]),
    ],
    targets: [
        .systemLibrary(name: "CCurl", path: "Sources/CCurl"),
        .systemLibrary(name: "CYaml", path: "Sources/CYaml"),
        .target(
            name: "LLMOpsCI",
            dependencies: ["CYaml"],
            linkerSettings: linksStaticDependencies ? [] : [.linkedLibrary("yaml")]
        ),
        .target(
            name: "CurlTransport",
            dependencies: ["CCurl", "LLMOpsCI"],
            linkerSettings: linksStaticDependencies ? [] : [.linkedLibrary("curl")]
        ),
        .executableTarget(
            name: "llmops-ci",
            dependencies: ["LLMOpsCI", "CurlTransport"]
        ),
        .executableTarget(
            name: "llmops-bench",
            dependencies: ["LLMOpsCI"],
            path: "benchmarks/Sources/llmops-bench"
        ),
        .testTarget(
            name: "LLMOpsCITests",
            dependencies: ["LLMOpsCI"],
            // The snapshot tests read these files through #filePath.
            exclude: ["Snapshots"]
        ),
        .testTarget(
            name: "CurlTransportTests",
            dependencies: ["CurlTransport", "LLMOpsCI"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
