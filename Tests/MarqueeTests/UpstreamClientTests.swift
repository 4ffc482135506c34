import Foundation
@testable import Marquee
import Testing

/// The production HTTP client against the fake upstream: retries, deadlines, caps.
@Suite("Upstream client")
final class UpstreamClientTests {
    let fake: FakeUpstream
    let client = UpstreamClient(timeouts: .init(connect: .seconds(1), total: .milliseconds(800)))

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
        let found = try client.get(url("/3/find/tt2543164"), upstream: "tmdb")
        #expect(found.status == 200)
        #expect(String(decoding: found.body, as: UTF8.self).contains("329865"))
        let missing = try client.get(url("/nowhere"), upstream: "tmdb")
        #expect(missing.status == 404)
        #expect(fake.calls("/nowhere") == 1)
    }

    @Test("a 5xx is retried once, then reported")
    func retriesServerErrors() {
        fake.set("/films", .status(503, []))
        #expect(throws: UpstreamError.status(503)) { try client.get(url("/films"), upstream: "ghibli") }
        #expect(fake.calls("/films") == 2)
    }

    @Test("a hanging service times out within the total deadline")
    func hangTimesOut() {
        fake.set("/films", .hang)
        let started = ContinuousClock.now
        #expect(throws: UpstreamError.timeout) { try client.get(url("/films"), upstream: "ghibli") }
        #expect(ContinuousClock.now - started < .milliseconds(1300))
    }

    @Test("a body over the cap is refused")
    func capsTheBody() {
        fake.set("/films", .json(Array(repeating: UInt8(ascii: " "), count: 64 * 1024)))
        #expect(throws: UpstreamError.tooLarge(limit: 1024)) { try client.get(url("/films"), upstream: "ghibli", maxBytes: 1024) }
    }

    @Test("a dead service is a connection error after one retry")
    func deadService() {
        fake.stop()
        #expect {
            try client.get(url("/films"), upstream: "ghibli")
        } throws: { error in
            if case .connection = error as? UpstreamError { return true }
            return false
        }
    }
}
