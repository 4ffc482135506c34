import Foundation
@testable import Marquee
import Testing

/// deploy/prometheus/ and deploy/grafana/ as an operator loads them: promtool's own checks and
/// unit tests of the alert rules, and the dashboard's shape and queries.
@Suite("Observability configuration")
struct ObservabilityConfigTests {
    static let prometheusDirectory = TestPaths.repository.appendingPathComponent("deploy/prometheus")
    static let dashboardFile = TestPaths.repository.appendingPathComponent("deploy/grafana/marquee.json")

    /// Debian's prometheus package; deploy/test installs it.
    static func promtool() throws -> String {
        let path = "/usr/bin/promtool"
        try #require(FileManager.default.isExecutableFile(atPath: path),
                     "promtool is missing: apt-get install prometheus (deploy/test installs it)")
        return path
    }

    static func run(_ executable: String, _ arguments: [String], in directory: URL) throws -> (status: Int32?, output: String) {
        let logs = TestPaths.temporaryDirectory("promtool")
        defer { try? FileManager.default.removeItem(at: logs) }
        let process = try ChildProcess("promtool", executable: "/usr/bin/env",
                                       arguments: ["-C", directory.path, executable] + arguments, logDirectory: logs)
        let status = process.waitForExit(timeout: .seconds(60))
        return (status, process.log)
    }

    @Test("promtool check config, check rules and test rules pass on deploy/prometheus/")
    func promtoolChecks() throws {
        let promtool = try Self.promtool()
        let directory = Self.prometheusDirectory
        let config = try Self.run(promtool, ["check", "config", "prometheus.yml"], in: directory)
        #expect(config.status == 0, "\(config.output)")
        let rules = try Self.run(promtool, ["check", "rules", "marquee-alerts.yml"], in: directory)
        #expect(rules.status == 0, "\(rules.output)")
        #expect(rules.output.contains("SUCCESS: 9 rules found"), "\(rules.output)")
        let tests = try Self.run(promtool, ["test", "rules", "marquee-alerts.test.yml"], in: directory)
        #expect(tests.status == 0, "\(tests.output)")
        #expect(tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    @Test("every alert the issue asks for has a rule and unit tests that see it fire and stay quiet")
    func alertsCovered() throws {
        let rules = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("marquee-alerts.yml"), encoding: .utf8)
        let tests = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("marquee-alerts.test.yml"), encoding: .utf8)
        let alerts = [
            "MarqueeHighErrorRatio", "MarqueeHighLatencyP99", "MarqueeTrailersHighLatencyP99", "MarqueeUpstreamFailing",
            "MarqueeStoreFilling", "MarqueeQueueBacklog", "MarqueeMoviesStale", "MarqueeWorkerRestarts", "MarqueeDown",
        ]
        for alert in alerts {
            #expect(rules.contains("- alert: \(alert)\n"), "no rule \(alert)")
            let evaluations = tests.components(separatedBy: "alertname: \(alert)\n").dropFirst()
            #expect(evaluations.contains { $0.hasPrefix("        exp_alerts: []") }, "\(alert) is never tested quiet")
            #expect(evaluations.contains { $0.hasPrefix("        exp_alerts:\n") }, "\(alert) is never tested firing")
        }
    }

    /// The metric names a PromQL expression reads.
    static func metricNames(_ expression: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: #"\b(?:marquee|process|nginx)_[a-z0-9_]+\b"#)
        let range = NSRange(expression.startIndex..., in: expression)
        return Set(pattern.matches(in: expression, range: range).compactMap { Range($0.range, in: expression).map { String(expression[$0]) } })
    }

    static func dashboard() throws -> [String: Any] {
        let data = try Data(contentsOf: dashboardFile)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Every query of the dashboard, by panel title.
    static func dashboardQueries() throws -> [(panel: String, expression: String)] {
        let panels = try #require(try dashboard()["panels"] as? [[String: Any]])
        return panels.flatMap { panel in
            ((panel["targets"] as? [[String: Any]]) ?? []).compactMap { target in
                (target["expr"] as? String).map { (panel["title"] as? String ?? "", $0) }
            }
        }
    }

    @Test("the Grafana dashboard: one Prometheus datasource input, a row per area, and a query for every agreed metric")
    func dashboardShape() throws {
        let dashboard = try Self.dashboard()
        #expect(dashboard["uid"] as? String == "marquee-overview")
        #expect((dashboard["schemaVersion"] as? Int).map { $0 >= 36 } == true)
        let templating = try #require((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]])
        #expect(templating.contains { $0["name"] as? String == "DS_PROMETHEUS" && $0["type"] as? String == "datasource" && $0["query"] as? String == "prometheus" })
        #expect(templating.contains { $0["name"] as? String == "instance" })

        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let rows = panels.filter { $0["type"] as? String == "row" }.compactMap { $0["title"] as? String }
        for area in ["Requests", "Upstreams", "Caches", "Store", "Queues", "Streams and tokens", "Movies", "Process", "nginx"] {
            #expect(rows.contains { $0.hasPrefix(area) }, "no row for \(area): \(rows)")
        }
        var ids = Set<Int>()
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            let id = try #require(panel["id"] as? Int)
            #expect(ids.insert(id).inserted, "panel id \(id) twice")
            let grid = try #require(panel["gridPos"] as? [String: Int], "\(title)")
            #expect((grid["x"] ?? 99) + (grid["w"] ?? 99) <= 24, "\(title) is wider than the dashboard")
            guard panel["type"] as? String != "row" else { continue }
            let datasource = panel["datasource"] as? [String: String]
            #expect(datasource == ["type": "prometheus", "uid": "${DS_PROMETHEUS}"], "\(title)")
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(title)")
            #expect(!targets.isEmpty && targets.allSatisfy { !(($0["expr"] as? String) ?? "").isEmpty }, "\(title)")
        }

        let used = try Self.dashboardQueries().reduce(into: Set<String>()) { $0.formUnion(Self.metricNames($1.expression)) }
        let agreed = [
            "marquee_http_requests_total", "marquee_http_request_duration_seconds_bucket", "marquee_http_requests_in_flight",
            "marquee_worker_threads_busy", "marquee_upstream_calls_total", "marquee_upstream_errors_total",
            "marquee_upstream_call_duration_seconds_bucket", "marquee_upstream_singleflight_joins_total",
            "marquee_upstream_bulkhead_rejections_total", "marquee_cache_hits_total", "marquee_cache_misses_total",
            "marquee_cache_stale_serves_total", "marquee_cache_negative_hits_total", "marquee_store_map_size_bytes",
            "marquee_store_used_bytes", "marquee_store_entries", "marquee_store_readers", "marquee_store_evictions_total",
            "marquee_store_full_refusals_total", "marquee_store_commit_duration_seconds_bucket", "marquee_content_events_pending",
            "marquee_content_events_parked", "marquee_content_events_processed_total", "marquee_visits_outbox_depth",
            "marquee_visits_outbox_lag_seconds", "marquee_queue_oldest_item_age_seconds", "marquee_stream_grants_total",
            "marquee_stream_refusals_total", "marquee_stream_expiries_total", "marquee_token_mints_total",
            "marquee_token_verifications_total", "marquee_movies_last_refresh_timestamp_seconds", "marquee_movies_staleness_seconds",
            "marquee_worker_restarts_total", "process_resident_memory_bytes", "process_open_fds", "marquee_build_info",
            "nginx_connections_active", "nginx_http_requests_total",
        ]
        for name in agreed {
            #expect(used.contains(name), "the dashboard never queries \(name)")
        }
        #expect(used.subtracting(agreed).subtracting(["nginx_connections_waiting"]).isEmpty, "unknown metrics: \(used.subtracting(agreed))")
    }

    @Test("every Marquee metric the dashboard or an alert reads is one the workers declare")
    func namesDeclared() throws {
        let alerts = try String(contentsOf: Self.prometheusDirectory.appendingPathComponent("marquee-alerts.yml"), encoding: .utf8)
        let used = try Self.dashboardQueries().reduce(into: Self.metricNames(alerts)) { $0.formUnion(Self.metricNames($1.expression)) }
        let declared = Set(MetricNames.help.keys)
        for name in used where !name.hasPrefix("nginx_") {
            let base = ["_bucket", "_sum", "_count"].reduce(name) { name, suffix in
                name.hasSuffix(suffix) && declared.contains(String(name.dropLast(suffix.count))) ? String(name.dropLast(suffix.count)) : name
            }
            #expect(declared.contains(base), "\(name) is not a metric the workers publish")
        }
    }
}
