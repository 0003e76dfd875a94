// swift-tools-version:6.0
// Benchmarks live in their own package so a plain `swift build` of cex never compiles them.
import PackageDescription

let package = Package(
    name: "CustomerExecutiveBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "CustomerExecutive", path: "../"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "AMIParse",
            dependencies: [
                .product(name: "AsteriskManager", package: "CustomerExecutive"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "AudioSocketCodec",
            dependencies: [
                .product(name: "AudioSocket", package: "CustomerExecutive"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "SpeechAccuracy",
            dependencies: [
                .product(name: "Speech", package: "CustomerExecutive"),
                .product(name: "Conversation", package: "CustomerExecutive"),
            ]
        ),
        .executableTarget(
            name: "LeadImport",
            dependencies: [
                .product(name: "CampaignApp", package: "CustomerExecutive"),
                .product(name: "CampaignCore", package: "CustomerExecutive"),
                .product(name: "CampaignStore", package: "CustomerExecutive"),
            ]
        ),
        .executableTarget(
            name: "ReportExport",
            dependencies: [
                .product(name: "CampaignStore", package: "CustomerExecutive"),
                .product(name: "Reports", package: "CustomerExecutive"),
            ]
        ),
        .executableTarget(
            name: "EngineLoad",
            dependencies: [
                .product(name: "AudioSocket", package: "CustomerExecutive"),
                .product(name: "ChatCompletions", package: "CustomerExecutive"),
                .product(name: "Deepgram", package: "CustomerExecutive"),
                .product(name: "ProviderDoubles", package: "CustomerExecutive"),
                .product(name: "Conversation", package: "CustomerExecutive"),
                .product(name: "PBXSimulator", package: "CustomerExecutive"),
                .product(name: "Speech", package: "CustomerExecutive"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
