import Foundation
@testable import Marquee
import Testing

/// The users feature's pure parts: ids, lease arithmetic, plan limits, timestamps.
@Suite("UsersUnit")
struct UsersUnitTests {
    @Test("ids: the allowed charset and length, nothing else")
    func identifiers() {
        for valid in ["010", "001", "stream_100", "192688f0-60be-11ea-a428-b7b3360c9a09", "a.b", String(repeating: "x", count: 64)] {
            #expect(Identifier.problem(valid) == nil, "\(valid)")
        }
        for invalid in ["", ".", "..", "../", "a/b", "a b", "😀", "a\u{0}", "josé", String(repeating: "x", count: 65)] {
            #expect(Identifier.problem(invalid) != nil, "\(invalid.debugDescription)")
        }
    }

    @Test("grants: the limit, case-insensitive renewals, expired leases never count")
    func leases() {
        var state = StreamState()
        let lease = Duration.seconds(90)
        #expect(state.grant("A", limit: 2, now: 1_000, lease: lease) == .granted(.init(stream: "A", key: "a", startedAt: 1_000, expiresAt: 91_000), active: 1))
        guard case .granted(_, active: 2) = state.grant("b", limit: 2, now: 2_000, lease: lease) else { Issue.record("b not granted"); return }
        guard case .refused(let active) = state.grant("c", limit: 2, now: 3_000, lease: lease) else { Issue.record("c not refused"); return }
        #expect(active.map(\.stream) == ["A", "b"])
        guard case .renewed(let renewed, active: 2) = state.grant("a", limit: 2, now: 4_000, lease: lease) else { Issue.record("a not renewed"); return }
        #expect(renewed.stream == "A" && renewed.startedAt == 1_000 && renewed.expiresAt == 94_000)
        // At 92 s "b" (until 92 s) has expired and "A" (until 94 s) has not.
        guard case .granted(_, active: 2) = state.grant("c", limit: 2, now: 92_000, lease: lease) else { Issue.record("c not granted"); return }
        #expect(state.leases.map(\.key) == ["a", "c"])
        #expect(state.renew("B", now: 92_500, lease: lease) == nil)
        let released = state.release("C", now: 93_000)
        let releasedAgain = state.release("c", now: 93_000)
        #expect(released && !releasedAgain)
        #expect(state.live(at: 94_000).isEmpty)
        #expect(state.lastOnline == 93_000)
        #expect(state.grant("x", limit: 0, now: 95_000, lease: lease) == .refused(active: []))
    }

    @Test("plan limits: plan=N entries, case and spaces ignored, mistakes named")
    func planLimits() throws {
        let settings = try StreamSettings(SettingsReader(environment: [
            "MARQUEE_STREAM_LIMIT": "2", "MARQUEE_STREAM_LIMITS": " Basic Plan = 1 ,premium=4,, ", "MARQUEE_STREAM_LEASE_SECONDS": "1.5",
        ]))
        #expect(settings.limit(for: "basic plan") == 1)
        #expect(settings.limit(for: "  BASIC PLAN ") == 1)
        #expect(settings.limit(for: "Premium") == 4)
        #expect(settings.limit(for: "Medium Plan") == 2)
        #expect(settings.lease == .milliseconds(1500))
        #expect(try StreamSettings(SettingsReader(environment: [:])) == StreamSettings())

        for (text, problem) in [("basic", "has no '='"), ("=3", "needs a plan name"), ("basic=many", "needs a limit from 0 to 1000"),
                                ("basic=1001", "needs a limit"), ("a=1,A=2", "names a plan a second time")] {
            #expect(throws: SettingsError.self) { try StreamSettings.parsePlanLimits(text) }
            do {
                _ = try StreamSettings.parsePlanLimits(text)
            } catch {
                #expect(error.variable == "MARQUEE_STREAM_LIMITS")
                #expect(error.problem.contains(problem), "\(error.problem)")
            }
        }
        #expect(throws: SettingsError.self) { try StreamSettings(SettingsReader(environment: ["MARQUEE_STREAM_LEASE_SECONDS": "0"])) }
    }

    @Test("the JSON writer escapes what JSON requires and keeps the rest as UTF-8")
    func jsonWriter() throws {
        let tricky = ["plain", "quote \" and \\ backslash", "new\nline\r\ttab", "nul \u{0} bell \u{7} escape \u{1b}", "emoji 😀 é 中", "</script>", ""]
        var json = JSONWriter()
        json.object { json in
            json.key("list")
            json.array(tricky) { json, text in json.string(text) }
            json.key("n")
            json.int(-42)
            json.key("none")
            json.null()
            json.key("nested")
            json.object { json in json.key("quote\"key"); json.array([Int]()) { _, _ in } }
        }
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        #expect(parsed["list"] as? [String] == tricky)
        #expect(parsed["n"] as? Int == -42)
        #expect(parsed["none"] is NSNull)
        #expect((parsed["nested"] as? [String: Any])?["quote\"key"] as? [Any] != nil)
    }

    @Test("store records read back what was written, and refuse what is not theirs")
    func recordCoding() throws {
        let record = UserRecord(id: "010", name: "Zoë \"Q\" 😀", subscription: "basic plan", createdAt: 1_700_000_000_123, sequence: 42)
        #expect(try UserRecord.decode(record.encoded()) == record)
        let state = StreamState(leases: [.init(stream: "Stream_11", key: "stream_11", startedAt: 5, expiresAt: 90_005)], lastOnline: 5)
        #expect(try StreamState.decode(state.encoded()) == state)
        #expect(try StreamState.decode(StreamState().encoded()) == StreamState())
        #expect(try StreamState.decode(nil) == StreamState())
        #expect(throws: RecordReader.Corrupt.self) { try UserRecord.decode(Array(record.encoded().dropLast())) }
        #expect(throws: RecordReader.Corrupt.self) { try UserRecord.decode(Array("{\"id\":\"010\"}".utf8)) }
    }

    @Test("timestamps: ISO 8601 UTC with exact milliseconds")
    func timestamps() {
        #expect(Timestamp.iso8601(0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(1_700_000_000_123) == "2023-11-14T22:13:20.123Z")
        #expect(Timestamp.iso8601(951_782_400_009) == "2000-02-29T00:00:00.009Z")
    }
}
