// swift-tools-version: 6.1
import PackageDescription

// The peer deploy/bench measures Marquee against: what a Swift team would otherwise deploy
// behind nginx (Hummingbird 2, `proxy_pass` with upstream keep-alive). Its own package so
// that Marquee never depends on Hummingbird; built into its own scratch folder.
let package = Package(
    name: "bench-peer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-peer", targets: ["BenchPeer"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "BenchPeer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        )
    ]
)
