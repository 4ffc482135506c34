import Foundation
import LMDBStore
import Testing
@testable import Marquee

@Suite("Video visits: byte caps and bounds")
struct VideoVisitUnitTests {
    static let combiningMarks = String(String.UnicodeScalarView((0x300..<0x30E).map { Unicode.Scalar($0)! }))

    static func visit(userAgent: String?, ip: String = "192.0.2.1") -> Visit {
        Visit(videoId: "12345", ip: ip, userAgent: userAgent, at: StoreClock.nowMillis())
    }

    @Test("512 × (a + 14 combining marks), 14,848 bytes, is cut to whole characters within 512 bytes")
    func combiningMarks() {
        let cluster = "a" + Self.combiningMarks
        #expect(cluster.count == 1 && cluster.utf8.count == 29)
        let agent = String(repeating: cluster, count: 512)
        #expect(agent.utf8.count == 14_848)
        let stored = Self.visit(userAgent: agent).userAgent
        #expect(stored.utf8.count == 17 * 29)
        #expect(stored == String(repeating: cluster, count: 17))
    }

    @Test("a 4-byte emoji that would end past 512 bytes is left out whole; one that ends at 512 is kept")
    func emojiAtTheBoundary() {
        let over = String(repeating: "a", count: 510) + "😀"
        #expect(over.utf8.count == 514)
        #expect(Self.visit(userAgent: over).userAgent == String(repeating: "a", count: 510))
        let exact = String(repeating: "a", count: 508) + "😀"
        #expect(Self.visit(userAgent: exact).userAgent == exact)
        let emojis = String(repeating: "😀", count: 200)
        #expect(Self.visit(userAgent: emojis).userAgent == String(repeating: "😀", count: 128))
        let family = "👨‍👩‍👧"
        #expect(family.utf8.count == 18)
        let joined = String(repeating: "a", count: 500) + family
        #expect(Self.visit(userAgent: joined).userAgent == String(repeating: "a", count: 500), "a joined emoji is not split")
    }

    @Test("one character longer than the cap is cut between scalars, still valid and within it")
    func oneHugeCharacter() {
        let agent = "a" + String(repeating: "\u{301}", count: 400)
        #expect(agent.count == 1)
        let stored = Self.visit(userAgent: agent).userAgent
        #expect(stored.utf8.count == 511)
        #expect(agent.utf8.starts(with: stored.utf8))
        #expect(Visit.truncated(String(repeating: "\u{301}", count: 400), toBytes: 1) == "")
    }

    @Test("control characters are dropped; the address is capped too; short fields are kept as they are")
    func otherFields() {
        #expect(Self.visit(userAgent: "curl/8\u{1}\u{7f}\u{85}.0").userAgent == "curl/8.0")
        #expect(Self.visit(userAgent: nil).userAgent == "")
        #expect(Self.visit(userAgent: "Mozilla/5.0 (X11; Linux) ünïcödé").userAgent == "Mozilla/5.0 (X11; Linux) ünïcödé")
        #expect(Self.visit(userAgent: "x", ip: String(repeating: "é", count: 100)).ip.utf8.count == 64)
        #expect(Self.visit(userAgent: "x", ip: "2001:db8::1").ip == "2001:db8::1")
    }

    @Test("the worst visit a client can cause encodes within Visit.maxEncodedBytes, and decodes back")
    func encodedSize() throws {
        let worst = [String(repeating: "\"", count: 600), String(repeating: "\\", count: 600), String(repeating: "/", count: 600),
                     String(repeating: "\u{1}", count: 600) + String(repeating: "\"", count: 600),
                     String(repeating: "\u{FFFD}", count: 600), String(repeating: "\u{2028}", count: 600),
                     String(repeating: "a" + Self.combiningMarks, count: 512)]
        for agent in worst {
            let visit = Visit(videoId: String(repeating: "v", count: 64), ip: String(repeating: "\"", count: 100), userAgent: agent, at: 9_999_999_999_999)
            let encoded = visit.encoded()
            #expect(encoded.count <= Visit.maxEncodedBytes, "\(encoded.count) bytes for \(agent.prefix(3))…")
            #expect(Visit.decode(encoded) == visit)
        }
    }

    @Test("moving keeps the count of every visit and the newest 100; the outbox refuses past its cap")
    func bounded() throws {
        let directory = TestPaths.temporaryDirectory("visit-bounds")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 64 << 20))
        let outbox = VisitOutbox(store: store)
        let table = LMDBVisitStore(store: store)
        let start = StoreClock.nowMillis()
        for index in 0..<1_200 {
            try outbox.append(Visit(videoId: index % 4 == 0 ? "other" : "12345", ip: "192.0.2.1", userAgent: "agent \(index)", at: start + UInt64(index)))
            if index % 250 == 249 { _ = try outbox.moveBatch(limit: 500) }
        }
        while try outbox.moveBatch(limit: 500).total > 0 {}
        #expect(try table.count(of: "12345") == 900)
        #expect(try table.count(of: "other") == 300)
        let recent = try table.visits(of: "12345", limit: .max)
        #expect(recent.count == Visit.recentKept)
        #expect(recent.first?.userAgent == "agent 1199")
        #expect(recent.map(\.at) == recent.map(\.at).sorted(by: >))
        #expect(try table.visits(of: "other", limit: .max).count == Visit.recentKept)
        #expect(try outbox.figures().queued == 0)

        _ = try store.increment(VideoKeys.enqueued, by: Int64(VisitOutbox.maxQueued), as: .disposable)
        #expect(throws: VisitOutbox.Full.self) { try outbox.append(Self.visit(userAgent: "one too many")) }
        #expect(try outbox.isEmpty())
    }

    @Test("a read nginx sends again to a second worker (the first recorded it and died) makes the same visit, counted once")
    func retriedReadCountsOnce() throws {
        let directory = TestPaths.temporaryDirectory("visit-retry")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 64 << 20))
        let outbox = VisitOutbox(store: store)
        let nginx = try #require(ProxiedRequest(id: "0123456789abcdef0123456789abcdef", msec: "1796625499.824"))
        #expect(nginx.startMillis == 1_796_625_499_824)
        let first = Visit(videoId: "12345", ip: "192.0.2.1", userAgent: "retried", at: 1_796_625_499_830, request: nginx)
        let retry = Visit(videoId: "12345", ip: "192.0.2.1", userAgent: "retried", at: 1_796_625_499_861, request: nginx)
        #expect(first.visitId == "1796625499824-0123456789abcdef0123456789abcdef")
        #expect(retry == first, "the second worker's clock does not enter the visit")
        try outbox.append(first)
        try outbox.append(retry)
        #expect(try outbox.figures().enqueued == 1)
        #expect(try outbox.moveBatch(limit: 10).moved == 1)
        try outbox.append(retry)
        #expect(try outbox.moveBatch(limit: 10) == VisitOutbox.Moved(moved: 0, alreadyStored: 1, rejected: 0),
                "moved already when the retry came: the table has it")
        #expect(try LMDBVisitStore(store: store).count(of: "12345") == 1)
        #expect(try outbox.figures().queued == 0)

        let other = try #require(ProxiedRequest(id: "fedcba9876543210fedcba9876543210", msec: "1796625499.824"))
        #expect(Visit(videoId: "12345", ip: "192.0.2.1", userAgent: "retried", at: 0, request: other).visitId != first.visitId)
        for (id, msec) in [("0123456789ABCDEF0123456789ABCDEF", "1796625499.824"), ("0123456789abcdef", "1796625499.824"),
                           ("0123456789abcdef0123456789abcdeg", "1796625499.824"), ("0123456789abcdef0123456789abcdef", "1796625499"),
                           ("0123456789abcdef0123456789abcdef", "1796625499.8"), ("0123456789abcdef0123456789abcdef", "-1.000"),
                           ("0123456789abcdef0123456789abcdef", "99999999999999.000")] {
            #expect(ProxiedRequest(id: id, msec: msec) == nil, "\(id) \(msec)")
        }
        #expect(ProxiedRequest(id: nil, msec: "1796625499.824") == nil)
    }
}
