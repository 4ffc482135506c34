import ArgumentParser
import Foundation
import Marquee
import SharedMetrics

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch the pool: request rate, latency percentiles and errors per route family.",
        discussion: """
            Reads the workers' metrics files in the store directory (metrics/), the figures \
            /metrics serves, and prints what changed each interval; no Prometheus needed. \
            Latency percentiles come from the histograms' buckets, interpolated as \
            Prometheus's histogram_quantile does.
            """
    )

    @Option(help: "The store directory; defaults to MARQUEE_STORE_DIR as the workers see it.")
    var storeDir: String?

    @Option(help: "Seconds between two screens.")
    var interval: Double = 1

    @Option(help: "Print this many screens, then exit.")
    var count: Int?

    @Flag(help: "Print one screen (one interval's figures) and exit.")
    var once = false

    func validate() throws {
        guard interval >= 0.05 && interval <= 3600 else { throw ValidationError("--interval must be between 0.05 and 3600 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var settings = try Settings(SettingsReader.current(processEnvironment: environment), stateDirectory: environment["STATE_DIRECTORY"])
        if let storeDir { settings.storeDirectory = storeDir }
        let directory = settings.metricsDirectory
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ValidationError("no metrics in \(directory): no worker has run with this store, or MARQUEE_METRICS=off")
        }
        let screens = once ? 1 : count
        // Clearing the screen only makes sense for a person watching.
        let clear = screens == nil && isatty(STDOUT_FILENO) == 1
        var previous = PoolMetrics.read(directory: directory)
        var previousAt = ContinuousClock.now
        var shown = 0
        while screens.map({ shown < $0 }) ?? true {
            Thread.sleep(forTimeInterval: interval)
            let current = PoolMetrics.read(directory: directory)
            let now = ContinuousClock.now
            let seconds = Double((now - previousAt).components.attoseconds) / 1e18 + Double((now - previousAt).components.seconds)
            let screen = Screen(previous: previous, current: current, seconds: seconds, directory: directory).text
            FileHandle.standardOutput.write(Data(((clear ? "\u{1B}[H\u{1B}[2J" : "") + screen + "\n").utf8))
            previous = current
            previousAt = now
            shown += 1
        }
    }

    /// One interval's figures per route family, and the pool's total.
    struct Screen {
        let previous: PoolMetrics
        let current: PoolMetrics
        let seconds: Double
        let directory: String

        struct Row {
            var requests: Double = 0
            var clientErrors: Double = 0
            var serverErrors: Double = 0
            var latency: PoolMetrics.Histogram?
        }

        var rows: [String: Row] {
            var rows: [String: Row] = [:]
            let before = Dictionary(previous.counters(named: "marquee_http_requests_total").map { (Self.key($0.labels), $0.value) },
                                    uniquingKeysWith: +)
            for (labels, value) in current.counters(named: "marquee_http_requests_total") {
                let family = labels["family"] ?? "other"
                let delta = value - (before[Self.key(labels)] ?? 0)
                rows[family, default: Row()].requests += delta
                if labels["status"] == "4xx" { rows[family, default: Row()].clientErrors += delta }
                if labels["status"] == "5xx" { rows[family, default: Row()].serverErrors += delta }
            }
            let earlier = Dictionary(previous.histograms(named: "marquee_http_request_duration_seconds").map {
                ($0.labels["family"] ?? "other", $0.histogram)
            }, uniquingKeysWith: { first, _ in first })
            for (labels, histogram) in current.histograms(named: "marquee_http_request_duration_seconds") {
                let family = labels["family"] ?? "other"
                rows[family, default: Row()].latency = histogram.since(earlier[family])
            }
            return rows
        }

        private static func key(_ labels: [String: String]) -> String {
            labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: ",")
        }

        var text: String {
            let rows = self.rows
            let pids = current.processes.map { String($0.pid) }.joined(separator: " ")
            var out = "marquee top: \(current.processes.count) live workers (pids \(pids.isEmpty ? "none" : pids)), "
                + "\(String(format: "%.1f", seconds)) s, \(directory)\n"
            out += Self.pad("FAMILY", 10) + Self.pad("REQ/S", 10, right: true) + Self.pad("P50", 10, right: true)
                + Self.pad("P90", 10, right: true) + Self.pad("P99", 10, right: true) + Self.pad("4XX/S", 9, right: true)
                + Self.pad("5XX/S", 9, right: true) + "\n"
            var total = Row()
            var totalLatency: PoolMetrics.Histogram?
            for family in rows.keys.sorted() {
                let row = rows[family]!
                out += line(family, row)
                total.requests += row.requests
                total.clientErrors += row.clientErrors
                total.serverErrors += row.serverErrors
                if let latency = row.latency {
                    if var sum = totalLatency, sum.bounds == latency.bounds {
                        sum.counts = zip(sum.counts, latency.counts).map { $0 &+ $1 }
                        totalLatency = sum
                    } else if totalLatency == nil {
                        totalLatency = latency
                    }
                }
            }
            total.latency = totalLatency
            out += line("all", total)
            return out
        }

        private func line(_ family: String, _ row: Row) -> String {
            let rate = { (value: Double) in String(format: "%.1f", value / max(seconds, 0.001)) }
            let quantile = { (q: Double) in row.latency?.quantile(q).map(Self.duration) ?? "-" }
            return Self.pad(family, 10) + Self.pad(rate(row.requests), 10, right: true) + Self.pad(quantile(0.5), 10, right: true)
                + Self.pad(quantile(0.9), 10, right: true) + Self.pad(quantile(0.99), 10, right: true)
                + Self.pad(rate(row.clientErrors), 9, right: true) + Self.pad(rate(row.serverErrors), 9, right: true) + "\n"
        }

        static func duration(_ seconds: Double) -> String {
            if seconds < 0.001 { return String(format: "%.0fµs", seconds * 1e6) }
            if seconds < 1 { return String(format: "%.1fms", seconds * 1e3) }
            return String(format: "%.2fs", seconds)
        }

        static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(1, width - text.count))
            return right ? fill + text : text + fill
        }
    }
}
