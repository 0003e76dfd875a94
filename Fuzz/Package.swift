// swift-tools-version:6.0
// libFuzzer targets for the decoders of what comes from outside: AMI, AudioSocket, CSV, JSON,
// campaign and template YAML. Their own package, built with `-sanitize=fuzzer` by `make fuzz`;
// a plain `swift build` of cex never compiles them.
import PackageDescription

// `make fuzz` builds everything with AddressSanitizer and libFuzzer's coverage, and links
// libFuzzer's main-less runtime: the code under test is instrumented, not only the harness.

let package = Package(
    name: "CustomerExecutiveFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "CustomerExecutive", path: "../"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "FuzzAMI",
            dependencies: ["FuzzDriver", .product(name: "AsteriskManager", package: "CustomerExecutive"), .product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "FuzzAudioSocket",
            dependencies: ["FuzzDriver", .product(name: "AudioSocket", package: "CustomerExecutive"), .product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "FuzzCSV", dependencies: ["FuzzDriver", .product(name: "CampaignCore", package: "CustomerExecutive")]),
        .executableTarget(
            name: "FuzzJSON", dependencies: ["FuzzDriver", .product(name: "JSON", package: "CustomerExecutive")]),
        .executableTarget(
            name: "FuzzYAML",
            dependencies: ["FuzzDriver", .product(name: "CampaignCore", package: "CustomerExecutive"), .product(name: "Conversation", package: "CustomerExecutive")]),
    ]
)
