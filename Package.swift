// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "CustomerExecutive",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cex", targets: ["cex"]),
        .library(name: "AsteriskManager", targets: ["AsteriskManager"]),
        .library(name: "AudioSocket", targets: ["AudioSocket"]),
        .library(name: "Speech", targets: ["Speech"]),
        .library(name: "JSON", targets: ["JSON"]),
        .library(name: "StreamingHTTP", targets: ["StreamingHTTP"]),
        .library(name: "ChatCompletions", targets: ["ChatCompletions"]),
        .library(name: "Deepgram", targets: ["Deepgram"]),
        .library(name: "Conversation", targets: ["Conversation"]),
        .library(name: "PBXSimulator", targets: ["PBXSimulator"]),
        .library(name: "CampaignCore", targets: ["CampaignCore"]),
        .library(name: "CampaignStore", targets: ["CampaignStore"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "CampaignApp", targets: ["CampaignApp"]),
        // The provider doubles, for the benchmarks (never a dependency of cex itself).
        .library(name: "ProviderDoubles", targets: ["ProviderDoubles"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // AMI: codec, typed actions and events, connection state machine, NIO client service.
        .target(
            name: "AsteriskManager",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // AudioSocket: frame codec, TCP server service, per-event-loop outbound pacer.
        .target(
            name: "AudioSocket",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Offline speech engines from Debian packages, called in process.
        .systemLibrary(name: "CEspeakNG", pkgConfig: "espeak-ng", providers: [.apt(["libespeak-ng-dev"])]),
        .systemLibrary(name: "CFlite", providers: [.apt(["flite1-dev"])]),
        .systemLibrary(name: "CPocketSphinx", pkgConfig: "pocketsphinx", providers: [.apt(["libpocketsphinx-dev", "pocketsphinx-en-us"])]),
        // Speech: recogniser and synthesiser protocols, resampling, offline engines.
        .target(
            name: "Speech",
            dependencies: ["CEspeakNG", "CFlite", "CPocketSphinx"],
            swiftSettings: swiftSettings
        ),
        // JSON values, read in one pass and written as JSONEncoder writes them, for the providers' hot paths and the reports.
        .target(name: "JSON", swiftSettings: swiftSettings),
        // The providers' HTTP/1.1 client on NIO: pooled keep-alive connections, TLS, responses as they stream.
        .target(
            name: "StreamingHTTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // OpenAI-compatible chat completions: pure SSE parser and stream assembler, retry rules, streaming client.
        .target(
            name: "ChatCompletions",
            dependencies: [
                "JSON",
                "StreamingHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Deepgram: streaming STT and TTS over WebSocket (our own RFC 6455 client on NIO), REST TTS, token grants.
        .target(
            name: "Deepgram",
            dependencies: [
                "JSON",
                "Speech",
                "StreamingHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The conversation engine: turn-taking, barge-in, dialogue policies, analysis, call records.
        .target(
            name: "Conversation",
            dependencies: [
                "AudioSocket",
                "Speech",
                "ChatCompletions",
                "JSON",
                "YAMLSource",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // YAML files read for good errors: lines of coding paths, unknown keys, decoding errors in words.
        .target(
            name: "YAMLSource",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The campaign domain, pure: leads, phone numbers, calling windows, retries, outcomes, campaign files.
        .target(
            name: "CampaignCore",
            dependencies: ["YAMLSource", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The only door to SQL: GRDB on the system libsqlite3, WAL, append-only migrations.
        .target(
            name: "CampaignStore",
            dependencies: [
                "CampaignCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Per-lead reports and the campaign funnel, as CSV and JSON.
        .target(
            name: "Reports",
            dependencies: ["CampaignCore", "CampaignStore", "JSON"],
            swiftSettings: swiftSettings
        ),
        // The Asterisk stand-in: AMI server and AudioSocket caller built from our codecs in reverse.
        .target(
            name: "PBXSimulator",
            dependencies: [
                "AsteriskManager",
                "AudioSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Wiring: configuration, services, the end-to-end demo.
        .target(
            name: "CampaignApp",
            dependencies: [
                "CampaignCore",
                "CampaignStore",
                "Reports",
                "AsteriskManager",
                "AudioSocket",
                "Conversation",
                "Speech",
                "PBXSimulator",
                "ChatCompletions",
                "Deepgram",
                "StreamingHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cex",
            dependencies: [
                "CampaignApp",
                "ChatCompletions",
                "CampaignCore",
                "CampaignStore",
                "Reports",
                "Conversation",
                "PBXSimulator",
                "AsteriskManager",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // Shared test aids: log capture, loopback helpers, a fault-injecting TCP proxy.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        // Loopback doubles of the cloud providers, speaking their wire protocols with our own codecs.
        .target(
            name: "ProviderDoubles",
            dependencies: [
                "ChatCompletions",
                "Deepgram",
                "JSON",
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/ProviderDoubles",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "YAMLSourceTests", dependencies: ["YAMLSource"], swiftSettings: swiftSettings),
        .testTarget(
            name: "JSONTests",
            dependencies: ["JSON"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StreamingHTTPTests",
            dependencies: [
                "StreamingHTTP", "ChatCompletions", "ProviderDoubles", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChatCompletionsTests",
            dependencies: [
                "ChatCompletions", "JSON", "StreamingHTTP", "ProviderDoubles", "TestSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DeepgramTests",
            dependencies: [
                "Deepgram", "Speech", "ProviderDoubles", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AsteriskManagerTests",
            dependencies: [
                "AsteriskManager", "PBXSimulator", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AudioSocketTests",
            dependencies: [
                "AudioSocket", "PBXSimulator", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SpeechTests",
            dependencies: ["Speech", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConversationTests",
            dependencies: [
                "Conversation", "Speech", "AudioSocket", "PBXSimulator", "TestSupport", "ChatCompletions", "JSON", "ProviderDoubles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CampaignCoreTests",
            dependencies: ["CampaignCore", "TestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CampaignStoreTests",
            dependencies: ["CampaignStore", "CampaignCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "CampaignStore", "CampaignCore", "TestSupport"],
            exclude: ["Golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PBXSimulatorTests",
            dependencies: [
                "PBXSimulator", "AsteriskManager", "AudioSocket", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CampaignAppTests",
            dependencies: [
                "CampaignApp", "CampaignCore", "CampaignStore", "AsteriskManager", "AudioSocket", "Conversation", "PBXSimulator", "TestSupport",
                "ChatCompletions", "JSON", "ProviderDoubles", "Speech",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Whole campaigns through a real Asterisk 22 (`make asterisk` builds it; never skipped).
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "CampaignApp", "CampaignCore", "CampaignStore", "Conversation", "PBXSimulator", "Speech", "TestSupport", "AsteriskManager",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "cexTests",
            dependencies: [
                "cex", "CampaignApp", "CampaignCore", "PBXSimulator", "TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
