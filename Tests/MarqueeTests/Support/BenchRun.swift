import Foundation
import Testing

/// The opt-in benchmark suites (MARQUEE_BENCH=1), nested here so that they run one at a time
/// even when the test runner runs suites in parallel: a benchmark shares the machine with
/// nothing else of the run. They take a minute or two each and want the release build:
///
///     swift build -c release --static-swift-stdlib
///     MARQUEE_BENCH=1 MARQUEE_TEST_BIN_DIR=$(swift build -c release --show-bin-path) \
///       swift test --filter Benchmarks
@Suite("Benchmarks", .serialized, .enabled(if: BenchRun.isEnabled))
enum Benchmarks {}

/// One `deploy/bench` run, printed, with its rows for the benchmarks to check.
struct BenchRun {
    static let isEnabled = ProcessInfo.processInfo.environment["MARQUEE_BENCH"] == "1"
    static let duration = ProcessInfo.processInfo.environment["MARQUEE_BENCH_DURATION"] ?? "10s"
    /// The workers' log level may be chosen for the run (MARQUEE_LOG_LEVEL=warning drops the
    /// per-request line).
    static let passedThrough = ProcessInfo.processInfo.environment.filter { $0.key == "MARQUEE_LOG_LEVEL" }

    struct Row {
        var target: String
        var connections: Int
        var requestsPerSecond: Double
        var p99Milliseconds: Double
        var non2xx: Int
        var errors: Int
    }

    let output: String
    let rows: [Row]

    /// Runs deploy/bench for `route` with `arguments`, the workers seeing `environment`, and
    /// prints its report.
    init(_ route: String, _ arguments: [String] = [], environment: [String: String] = [:], label: String) throws {
        let scratch = TestPaths.temporaryDirectory("bench-\(label)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let bench = try ChildProcess(
            "deploy-bench", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/bench"), route, "--duration", Self.duration, "--port", "\(Self.port())",
                        "--binary", TestPaths.marquee] + arguments,
            environment: environment.merging(Self.passedThrough) { _, new in new }, logDirectory: scratch
        )
        defer { bench.stop() }
        let status = bench.waitForExit(timeout: .seconds(600))
        output = bench.log
        print(output)
        try #require(status == 0, "deploy/bench failed")
        rows = output.split(separator: "\n").compactMap { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard columns.count == 7, ["marquee", "variant", "ceiling", "peer", "nginx"].contains(columns[0]),
                  let connections = Int(columns[1]), let rate = Double(columns[2]),
                  let p99 = Double(columns[4].replacingOccurrences(of: "ms", with: "")),
                  let non2xx = Int(columns[5]), let errors = Int(columns[6]) else { return nil }
            return Row(target: columns[0], connections: connections, requestsPerSecond: rate, p99Milliseconds: p99,
                       non2xx: non2xx, errors: errors)
        }
    }

    func row(_ target: String, connections: Int) throws -> Row {
        try #require(rows.first { $0.target == target && $0.connections == connections }, "no \(target) row at \(connections)")
    }

    /// marquee over the C ceiling (libfcgi over kept connections) at `connections`, both
    /// measured in this run.
    func ratio(connections: Int) throws -> Double {
        try row("marquee", connections: connections).requestsPerSecond / row("ceiling", connections: connections).requestsPerSecond
    }

    /// marquee over the Hummingbird 2 peer's health route at `connections`, both measured in this run.
    func peerRatio(connections: Int) throws -> Double {
        try row("marquee", connections: connections).requestsPerSecond / row("peer", connections: connections).requestsPerSecond
    }

    /// Every marquee row answered only 2xx, with no socket errors.
    func expectMarqueeClean(sourceLocation: SourceLocation = #_sourceLocation) {
        let marquee = rows.filter { $0.target == "marquee" }
        #expect(!marquee.isEmpty, sourceLocation: sourceLocation)
        for row in marquee {
            #expect(row.non2xx == 0 && row.errors == 0, "non-2xx or socket errors at \(row.connections) connections",
                    sourceLocation: sourceLocation)
        }
    }

    /// deploy/bench listens on PORT to PORT+3; all below the ephemeral range, so that no
    /// client socket of the run can hold one.
    private static func port() -> Int {
        func free(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        while true {
            let port = Int.random(in: 20_000...29_996)
            if (port...port + 3).allSatisfy(free) { return port }
        }
    }
}
