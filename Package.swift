// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "marquee",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "marquee", targets: ["MarqueeCLI"]),
        .library(name: "FastCGI", targets: ["FastCGI"]),
        .library(name: "LMDBStore", targets: ["LMDBStore"]),
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
            dependencies: ["CLibPQ"]
        ),
        .target(
            name: "FastCGI",
            dependencies: ["CFastCGI"]
        ),
        .target(
            name: "LMDBStore",
            dependencies: ["CLMDB", .product(name: "Atomics", package: "swift-atomics")]
        ),
        .target(
            name: "Marquee",
            dependencies: [
                "FastCGI",
                "LMDBStore",
                "PostgresClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("Movies/Templates"), .copy("Database/Migrations")]
        ),
        .executableTarget(
            name: "MarqueeCLI",
            dependencies: [
                "Marquee",
                "LMDBStore",
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
                "PostgresClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)
