import Foundation
import Testing

/// Debian's real Prometheus and prometheus-nginx-exporter against a `deploy/run` stack, with
/// the repository's scrape configuration and alert rules.
@Suite("Prometheus scrape", .serialized)
struct PrometheusScrapeTests {
    static let prometheus = "/usr/bin/prometheus"
    static let exporter = "/usr/bin/prometheus-nginx-exporter"

    @Test("Prometheus scrapes the deploy/run stack's /metrics and nginx's exporter with deploy/prometheus/prometheus.yml; PromQL gives the request rate per route family; every dashboard and alert query runs")
    func scrapesTheStack() async throws {
        for tool in [Self.prometheus, Self.exporter] {
            try #require(FileManager.default.isExecutableFile(atPath: tool),
                         "\(tool) is missing: apt-get install prometheus prometheus-nginx-exporter (deploy/test installs them)")
        }
        let state = TestPaths.temporaryDirectory("prometheus-scrape")
        defer { try? FileManager.default.removeItem(at: state) }
        // The movies' figures exist once a catalogue is loaded: the fake plays Studio Ghibli.
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let port = TestPaths.freePort()
        let run = try ChildProcess(
            "deploy-run", executable: "/bin/bash",
            arguments: [TestPaths.script("deploy/run"), "--port", String(port), "--workers", "2",
                        "--state-dir", state.appendingPathComponent("run").path, "--binary", TestPaths.marquee],
            environment: ["MARQUEE_GHIBLI_BASE_URL": fake.baseURL, "MARQUEE_ADMIN_TOKEN": Stack.adminToken,
                          "MARQUEE_STREAM_LIMIT": "1", "MARQUEE_STREAM_LEASE_SECONDS": "1"],
            logDirectory: state
        )
        defer { run.stop(grace: .seconds(20)) }
        let site = HTTPClient(base: "http://127.0.0.1:\(port)")
        try #require(try await eventually(within: .seconds(30)) {
            await site.status("/api/v1/health") == 200 && run.log.contains("Marquee is up")
        }, "deploy/run log: \(run.log)")
        #expect(run.log.contains("http://127.0.0.1:\(port)/metrics"), "deploy/run says where the metrics are: \(run.log)")
        #expect(run.log.contains("top --store-dir \(state.appendingPathComponent("run/store").path)"), "\(run.log)")

        let exporterPort = TestPaths.freePort()
        let exporter = try ChildProcess(
            "nginx-exporter", executable: Self.exporter,
            arguments: ["-nginx.scrape-uri", "http://127.0.0.1:\(port)/stub_status", "-web.listen-address", "127.0.0.1:\(exporterPort)"],
            logDirectory: state
        )
        defer { exporter.stop() }

        // The repository's files, with the test's addresses and a 1 s interval instead of 15 s.
        let configDirectory = state.appendingPathComponent("prometheus")
        try FileManager.default.createDirectory(at: configDirectory, withIntermediateDirectories: true)
        let source = ObservabilityConfigTests.prometheusDirectory
        let original = try String(contentsOf: source.appendingPathComponent("prometheus.yml"), encoding: .utf8)
        let rendered = original
            .replacingOccurrences(of: "'10.0.0.10:80'", with: "'127.0.0.1:\(port)'")
            .replacingOccurrences(of: "'10.0.0.10:9113'", with: "'127.0.0.1:\(exporterPort)'")
            .replacingOccurrences(of: "scrape_interval: 15s", with: "scrape_interval: 1s")
            .replacingOccurrences(of: "scrape_timeout: 5s", with: "scrape_timeout: 1s")
            .replacingOccurrences(of: "evaluation_interval: 15s", with: "evaluation_interval: 1s")
        #expect(rendered.contains("127.0.0.1:\(port)") && rendered.contains("127.0.0.1:\(exporterPort)") && rendered.contains("interval: 1s"),
                "the scrape configuration changed shape; adapt the test's rendering")
        try rendered.write(to: configDirectory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: source.appendingPathComponent("marquee-alerts.yml"),
                                         to: configDirectory.appendingPathComponent("marquee-alerts.yml"))

        let prometheusPort = TestPaths.freePort()
        let prometheus = try ChildProcess(
            "prometheus", executable: Self.prometheus,
            arguments: ["--config.file=\(configDirectory.appendingPathComponent("prometheus.yml").path)",
                        "--storage.tsdb.path=\(state.appendingPathComponent("tsdb").path)",
                        "--web.listen-address=127.0.0.1:\(prometheusPort)"],
            logDirectory: state
        )
        defer { prometheus.stop(grace: .seconds(10)) }
        let api = PrometheusAPI(base: "http://127.0.0.1:\(prometheusPort)")

        // Both targets healthy.
        var targets: [[String: Any]] = []
        let up = try await eventually(within: .seconds(60)) {
            targets = (try? await api.get("/api/v1/targets"))?["activeTargets"] as? [[String: Any]] ?? []
            let healthy = targets.filter { $0["health"] as? String == "up" }.compactMap { ($0["labels"] as? [String: String])?["job"] }
            return Set(healthy) == ["marquee", "nginx"]
        }
        try #require(up, "targets: \(targets); prometheus log: \(prometheus.log.suffix(2000))")

        // A stream granted, one refused at the plan's limit of 1, and one granted after the first
        // lease (1 s) expired: the stream counters count from their first event.
        let admin = ["Authorization": "Bearer \(Stack.adminToken)", "Content-Type": "application/json"]
        let user = try await site.request("POST", "/api/v1/users", headers: admin,
                                          body: Data(#"{"id":"scraped-user","name":"Scraped","subscription":"basic"}"#.utf8))
        #expect(user.status == 201, "\(user.text)")
        func stream(_ name: String) async throws -> Int {
            try await site.request("POST", "/api/v1/users/scraped-user/streams", headers: admin,
                                   body: Data(#"{"stream":"\#(name)"}"#.utf8)).status
        }
        #expect(try await stream("first") == 201)
        #expect(try await stream("second") == 409)
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await stream("third") == 201)

        // Traffic in three families, over several scrapes.
        for _ in 0..<6 {
            for _ in 0..<10 { _ = await site.status("/api/v1/health") }
            for _ in 0..<5 { _ = await site.status("/api/v1/movies") }
            for _ in 0..<5 { _ = await site.status("/no/such/route") }
            try await Task.sleep(for: .milliseconds(700))
        }
        var rates: [String: Double] = [:]
        let query = #"sum by (family) (rate(marquee_http_requests_total{job="marquee"}[20s]))"#
        let seen = try await eventually(within: .seconds(30)) {
            let result = (try? await api.query(query)) ?? []
            rates = Dictionary(result.compactMap { sample in
                guard let family = (sample["metric"] as? [String: String])?["family"],
                      let value = (sample["value"] as? [Any])?.last as? String, let rate = Double(value) else { return nil }
                return (family, rate)
            }, uniquingKeysWith: +)
            return ["health", "movies", "other"].allSatisfy { (rates[$0] ?? 0) > 0 }
        }
        #expect(seen, "request rate per family: \(rates)")
        #expect((rates["health"] ?? 0) > (rates["movies"] ?? 0), "\(rates)")

        // nginx's own figures, through the exporter.
        let nginxUp = try await api.query(#"nginx_up{job="nginx"}"#)
        #expect((nginxUp.first?["value"] as? [Any])?.last as? String == "1", "\(nginxUp)")

        // The alert rules are loaded and evaluate.
        let groups = (try await api.get("/api/v1/rules"))?["groups"] as? [[String: Any]] ?? []
        let rules = groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }
        #expect(rules.count == 9, "\(groups)")
        _ = try await eventually(within: .seconds(10)) {
            let groups = (try? await api.get("/api/v1/rules"))?["groups"] as? [[String: Any]] ?? []
            return groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }.allSatisfy { $0["health"] as? String == "ok" }
        }
        let finalGroups = (try await api.get("/api/v1/rules"))?["groups"] as? [[String: Any]] ?? []
        for rule in finalGroups.flatMap({ $0["rules"] as? [[String: Any]] ?? [] }) {
            #expect(rule["health"] as? String == "ok", "\(rule)")
        }

        // Every dashboard query is valid PromQL here, and every metric it or an alert reads is
        // one that a real scrape has.
        let names = Set((try await api.getArray("/api/v1/label/__name__/values")).compactMap { $0 as? String })
        var used = Set<String>()
        for (panel, expression) in try ObservabilityConfigTests.dashboardQueries() {
            used.formUnion(ObservabilityConfigTests.metricNames(expression))
            let concrete = expression.replacingOccurrences(of: "$__rate_interval", with: "1m")
                .replacingOccurrences(of: "$instance", with: ".*")
            let answer = try await api.raw("/api/v1/query?query=" + PrometheusAPI.encode(concrete))
            #expect(answer?["status"] as? String == "success", "\(panel): \(expression) -> \(answer ?? [:])")
        }
        let alerts = try String(contentsOf: source.appendingPathComponent("marquee-alerts.yml"), encoding: .utf8)
        used.formUnion(ObservabilityConfigTests.metricNames(alerts))
        let missing = used.subtracting(names)
        #expect(missing.isEmpty, "queried but not in a real scrape: \(missing.sorted())")
    }
}

/// Prometheus's HTTP API, as a test reads it.
struct PrometheusAPI {
    let client: HTTPClient

    init(base: String) {
        client = HTTPClient(base: base)
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    /// The whole answer: `{"status": …, "data": …}`.
    func raw(_ path: String) async throws -> [String: Any]? {
        let answer = try await client.get(path)
        return answer.json()
    }

    /// `data`, when it is an object.
    func get(_ path: String) async throws -> [String: Any]? {
        try await raw(path)?["data"] as? [String: Any]
    }

    func getArray(_ path: String) async throws -> [Any] {
        try await raw(path)?["data"] as? [Any] ?? []
    }

    /// An instant query's vector.
    func query(_ promQL: String) async throws -> [[String: Any]] {
        let data = try await get("/api/v1/query?query=" + Self.encode(promQL))
        return data?["result"] as? [[String: Any]] ?? []
    }
}
