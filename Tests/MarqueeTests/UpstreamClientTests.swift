import Foundation
import Logging
@testable import Marquee
import Synchronization
import Testing

/// The production HTTP client against the fake upstream: retries, deadlines, caps.
@Suite("Upstream client")
final class UpstreamClientTests {
    let fake: FakeUpstream
    let client = UpstreamClient(timeouts: .init(connect: .seconds(1), total: .milliseconds(800)))
    let lines = CapturedLines()
    var logger: Logger { Logger(label: "upstream-test") { _ in CapturingLogHandler(lines: self.lines) } }

    init() throws {
        fake = try FakeUpstream()
    }

    deinit {
        fake.stop()
        client.shutdown()
    }

    private func url(_ path: String) -> URL { URL(string: fake.baseURL + path)! }

    @Test("a fixture answers, and a 404 is the caller's to read")
    func answers() throws {
        let found = try client.get(url("/3/find/tt2543164"), upstream: "tmdb", logger: logger)
        #expect(found.status == 200)
        #expect(String(decoding: found.body, as: UTF8.self).contains("329865"))
        let missing = try client.get(url("/nowhere"), upstream: "tmdb", logger: logger)
        #expect(missing.status == 404)
        #expect(fake.calls("/nowhere") == 1)
    }

    @Test("a 5xx is retried once, then reported")
    func retriesServerErrors() {
        fake.set("/films", .status(503, []))
        #expect(throws: UpstreamError.status(503)) { try client.get(url("/films"), upstream: "ghibli", logger: logger) }
        #expect(fake.calls("/films") == 2)
    }

    @Test("a hanging service times out within the total deadline")
    func hangTimesOut() {
        fake.set("/films", .hang)
        let started = ContinuousClock.now
        #expect(throws: UpstreamError.timeout) { try client.get(url("/films"), upstream: "ghibli", logger: logger) }
        #expect(ContinuousClock.now - started < .milliseconds(1300))
    }

    @Test("a body over the cap is refused")
    func capsTheBody() {
        fake.set("/films", .json(Array(repeating: UInt8(ascii: " "), count: 64 * 1024)))
        #expect(throws: UpstreamError.tooLarge(limit: 1024)) { try client.get(url("/films"), upstream: "ghibli", maxBytes: 1024, logger: logger) }
    }

    @Test("a dead service is a connection error after one retry")
    func deadService() {
        fake.stop()
        #expect {
            try client.get(url("/films"), upstream: "ghibli", logger: logger)
        } throws: { error in
            if case .connection = error as? UpstreamError { return true }
            return false
        }
    }

    @Test("every line about a call carries the caller's metadata (a request's id), and never the query with its key")
    func linesCarryTheRequestId() throws {
        fake.set("/films", .status(503, []))
        var logger = logger
        logger.logLevel = .debug
        logger[metadataKey: Request.requestIdKey] = "req-42.a_b"
        #expect(throws: UpstreamError.status(503)) {
            try client.get(url("/films?api_key=secret-key"), upstream: "ghibli", logger: logger)
        }
        _ = try client.get(url("/3/find/tt2543164"), upstream: "tmdb", logger: logger)
        let all = lines.all
        let failed = all.filter { $0.message == "upstream call failed" }
        // One line per attempt: the retry is skipped when its pause would pass the deadline.
        #expect((1...2).contains(failed.count), "\(all)")
        #expect(failed.map { $0.metadata["attempt"] } == Array(["1", "2"].prefix(failed.count)))
        #expect(failed.allSatisfy { $0.metadata["status"] == "503" && $0.metadata["upstream"] == "ghibli" && $0.level == .warning })
        let ok = all.filter { $0.message == "upstream call" }
        #expect(ok.count == 1 && ok.first?.metadata["path"] == "/3/find/tt2543164" && ok.first?.level == .debug)
        #expect(all.count == failed.count + 1 && all.allSatisfy { $0.metadata[Request.requestIdKey] == "req-42.a_b" })
        #expect(!all.contains { $0.metadata.values.contains { $0.contains("secret-key") } })
    }
}

/// What a test's logger was given, line by line.
final class CapturedLines: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lock = Mutex<[Line]>([])
    var all: [Line] { lock.withLock { $0 } }
    func append(_ line: Line) { lock.withLock { $0.append(line) } }
}

struct CapturingLogHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        lines.append(.init(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
    }
}
