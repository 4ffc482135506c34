// swift-tools-version: 6.1
import Foundation
import PackageDescription

let package = Package(
    name: "marquee",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "marquee", targets: ["MarqueeCLI"]),
        .library(name: "FastCGI", targets: ["FastCGI"]),
        .library(name: "LMDBStore", targets: ["LMDBStore"]),
        .library(name: "SharedMetrics", targets: ["SharedMetrics"]),
        .library(name: "PostgresClient", targets: ["PostgresClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .target(
            name: "FastCGI",
            dependencies: ["CFastCGI", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .target(
            name: "LMDBStore",
            dependencies: ["CLMDB", .product(name: "Atomics", package: "swift-atomics"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        .target(
            name: "SharedMetrics",
            dependencies: [.product(name: "Atomics", package: "swift-atomics"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        .target(
            name: "Marquee",
            dependencies: [
                "FastCGI",
                "LMDBStore",
                "SharedMetrics",
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("Movies/Templates"), .copy("Database/Migrations"), .copy("OpenAPI/marquee.yaml")]
        ),
        .executableTarget(
            name: "MarqueeCLI",
            dependencies: [
                "Marquee",
                "LMDBStore",
                "SharedMetrics",
                "PostgresClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "StoreStress",
            dependencies: ["LMDBStore"],
            path: "Tests/StoreStress"
        ),
        .testTarget(
            name: "LMDBStoreTests",
            dependencies: ["LMDBStore", "StoreStress"]
        ),
        .testTarget(
            name: "MarqueeTests",
            dependencies: [
                "Marquee",
                "MarqueeCLI",
                "SharedMetrics",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

// The fuzz targets (fuzz/README.md) are declared only when MARQUEE_FUZZ=1: they link only with
// -sanitize=fuzzer (libFuzzer's driver), so the ordinary build and tests never see them, and
// deploy/fuzz builds them in a scratch folder of their own (.build-fuzz) so that the sanitized
// objects never replace the ordinary ones.
if ProcessInfo.processInfo.environment["MARQUEE_FUZZ"] == "1" {
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "fuzz/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "fuzz/FuzzSupport"),
    ]
    for name in ["FuzzJSONBody", "FuzzQueryString", "FuzzFilmURL", "FuzzCDNFile", "FuzzTokenVerifier", "FuzzLegacyImport", "FuzzEnvironmentFile"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport", "Marquee", "LMDBStore"], path: "fuzz/Targets/\(name)"))
    }
}
