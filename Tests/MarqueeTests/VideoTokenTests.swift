import Foundation
import Testing

/// Minting and checking signed links through a real nginx and real workers.
@Suite("Video tokens", .serialized)
struct VideoTokenTests {
    static let legacyKeys = ["0000", "1111", "2222"]

    @Test("md5-legacy: the earlier service's vectors hold, and calls spread over the workers cycle the CDNs 0,1,2,0,1")
    func legacyVectorsRoundRobin() async throws {
        let video = try await VideoStack("video-legacy") { _ in
            Self.legacyKeys.enumerated().map { index, key in
                #"{"name": "cdn\#(index)", "address": "https://cdn\#(index).example.com", "scheme": "md5-legacy", "keys": [{"id": "legacy-\#(index)", "secret": "\#(key)"}]}"#
            }
        }
        defer { video.stop() }
        let stack = video.stack
        let vectors = try VideoFixtures.legacyVectors()
        let body = try VideoFixtures.data("token-request.json")
        try await video.catalogue(try VideoFixtures.data("video-12345.json"), id: "12345")

        func served(by worker: ChildProcess) -> Int {
            worker.log.components(separatedBy: #""route":"/video/token""#).count - 1
        }
        // Sequential calls alone would all wake the same idle thread; slow requests beside them
        // keep threads of both workers busy, so that the calls land on either worker.
        let busy = LoadCounter()
        let load = (0..<6).map { _ in busy.run { await stack.client.status("/api/v1/test/sleep?ms=15") } }
        var call = 0
        // Five calls at least, and on until both workers have answered some.
        while call < 5 || (stack.workers.contains { served(by: $0) == 0 } && call < 200) {
            let answer = try await stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"], body: body)
            #expect(answer.status == 200, "\(answer.text)")
            let json = try #require(answer.json())
            #expect(json["_id"] as? String == "6213a7299fa2604f1b188ee0")
            #expect(json["videoId"] as? String == "12345")
            #expect(json["title"] as? String == "Big Buck Bunny")
            let sources = try #require(json["sources"] as? [[String: Any]])
            #expect(sources.map { $0["size"] as? Int } == [1080, 720])
            #expect(sources.map { $0["type"] as? String } == ["video/mp4", "video/mp4"])
            let cdn = call % 3
            for source in sources {
                let url = try #require(source["src"] as? String)
                let path = try #require(VideoFixtures.legacySources.values.first { url.contains($0 + "?") })
                let token = try #require(vectors.first { $0.key == Self.legacyKeys[cdn] && $0.src == path }?.token)
                #expect(url == "https://cdn\(cdn).example.com\(path)?token=\(token)", "call \(call)")
            }
            call += 1
        }
        for task in load { await busy.finish(task) }

        // A burst: the calls take the next 30 turns, each exactly once, so each CDN gets 10.
        let burst = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    let answer = try? await stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"], body: body)
                    return ((answer?.json()?["sources"] as? [[String: Any]])?.first?["src"] as? String)?.components(separatedBy: ".example.com").first
                }
            }
            var hosts: [String?] = []
            for await host in group { hosts.append(host) }
            return hosts
        }
        #expect(Dictionary(grouping: burst.compactMap { $0 }, by: { $0 }).mapValues(\.count) == [
            "https://cdn0": 10, "https://cdn1": 10, "https://cdn2": 10,
        ])
        #expect(stack.workers.allSatisfy { served(by: $0) > 0 }, "both workers minted within \(call) calls")
        #expect(stack.workers.allSatisfy { $0.log.contains("md5-legacy") && $0.log.contains(#""level":"warning""#) },
                "each worker warns at start that a CDN uses md5-legacy")

        let status = try await stack.client.get("/api/v1/status")
        let section = (status.json()?["features"] as? [String: Any])?["videos"] as? [String: Any]
        #expect((section?["cdns"] as? [Any])?.count == 3)
        #expect(section?.description.contains("0000") == false, "no secret on the status page")
    }

    @Test("nginx-secure-link: real nginx serves a minted URL; one changed character or expiry gives 403")
    func secureLinkThroughNginx() async throws {
        let video = try await VideoStack("video-securelink") { base in [
            #"{"name": "secure", "address": "\#(base)/media/secure", "scheme": "nginx-secure-link", "keys": [{"id": "s1", "secret": "\#(Stack.secureLinkSecret)"}]}"#,
            #"{"name": "secure-brief", "address": "\#(base)/media/secure", "scheme": "nginx-secure-link", "lifetimeSeconds": 1, "keys": [{"id": "s2", "secret": "\#(Stack.secureLinkSecret)"}]}"#,
        ] }
        defer { video.stop() }
        let movie = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try video.addMedia("secure", "clip.mp4", movie)
        try video.addMedia("secure", "other.mp4", movie)

        let url = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(url.hasPrefix("\(video.base)/media/secure/clip.mp4?md5="))
        let served = try await video.fetch(url)
        #expect(served.status == 200)
        #expect(served.body == movie)
        #expect(try await video.fetch(changingOneCharacter(of: "md5", in: url)).status == 403)
        #expect(try await video.fetch(changingOneCharacter(of: "expires", in: url)).status == 403)
        #expect(try await video.fetch(url.replacingOccurrences(of: "clip.mp4", with: "other.mp4")).status == 403)
        #expect(try await video.fetch(String(url[..<url.range(of: "?")!.lowerBound])).status == 403)

        let brief = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(brief.contains("/media/secure/clip.mp4?md5="))
        #expect(try await video.fetch(brief).status == 200)
        try await Self.waitPastExpiry(of: brief)
        #expect(try await video.fetch(brief).status == 403)
        #expect(try await video.fetch(url).status == 200, "the long-lived link still works")
    }

    @Test("hmac-sha256 through auth_request: served, tampered, expired, and across a key rotation")
    func authRequestThroughNginx() async throws {
        func cdns(_ base: String, keys: [(id: String, active: Bool, retired: Bool)]) -> [String] {
            [
                VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: keys),
                VideoFixtures.hmacCDN(name: "protected-brief", address: "\(base)/media/protected", keys: [("kb", true, false)],
                                      extra: #", "lifetimeSeconds": 1"#),
            ]
        }
        let video = try await VideoStack("video-authrequest") { cdns($0, keys: [("k1", true, false)]) }
        defer { video.stop() }
        let movie = Data("protected movie bytes\n".utf8)
        try video.addMedia("protected", "clip.mp4", movie)
        try video.addMedia("protected", "other.mp4", movie)

        let first = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(first.hasPrefix("\(video.base)/media/protected/clip.mp4?expires="))
        #expect(first.contains("&kid=k1&sig="))
        let served = try await video.fetch(first)
        #expect(served.status == 200)
        #expect(served.body == movie)
        #expect(try await video.fetch(changingOneCharacter(of: "sig", in: first)).status == 403)
        #expect(try await video.fetch(changingOneCharacter(of: "expires", in: first)).status == 403)
        #expect(try await video.fetch(first.replacingOccurrences(of: "clip.mp4", with: "other.mp4")).status == 403)
        #expect(try await video.fetch("\(video.base)/media/protected/clip.mp4").status == 403)

        let brief = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(brief.contains("&kid=kb&"))
        #expect(try await video.fetch(brief).status == 200)
        try await Self.waitPastExpiry(of: brief)
        #expect(try await video.fetch(brief).status == 403)

        // Rotation: k2 signs from now on, and links signed with k1 still work until it retires.
        try await video.reload(cdns: cdns(video.base, keys: [("k2", true, false), ("k1", false, false)]))
        let second = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(second.contains("&kid=k2&"))
        #expect(try await video.fetch(second).status == 200)
        #expect(try await video.fetch(first).status == 200)

        // A file that does not validate is refused whole: k1, which it would retire, still verifies.
        try await video.reload(cdns: cdns(video.base, keys: [("k2", true, false), ("k1", true, true)]), outcome: "reload refused")
        #expect(try await video.fetch(first).status == 200)
        #expect(try await video.mint(["/clip.mp4"]).count == 1)

        try await video.reload(cdns: cdns(video.base, keys: [("k2", true, false), ("k1", false, true)]))
        #expect(try await video.fetch(first).status == 403, "a retired key is refused")
        #expect(try await video.fetch(second).status == 200)

        // The verifier itself, as nginx's subrequest reaches it.
        let pathAndQuery = String(second.dropFirst(video.base.count))
        let direct = try await video.stack.client.get("/api/v1/tokens/verify", headers: ["X-Original-URI": pathAndQuery])
        #expect(direct.status == 204)
        let retired = try await video.stack.client.get("/api/v1/tokens/verify", headers: ["X-Original-URI": String(first.dropFirst(video.base.count))])
        #expect(retired.status == 403)
        #expect(retired.errorCode == "token_key_retired")
        let missing = try await video.stack.client.get("/api/v1/tokens/verify")
        #expect(missing.status == 403)
        #expect(missing.errorCode == "token_missing")
    }

    @Test("every body of the bad-input corpus gets 400 invalid_body, never a 5xx")
    func badInputCorpus() async throws {
        let video = try await VideoStack("video-badinput") { base in
            [VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)])]
        }
        defer { video.stop() }
        let source = #"{"src": "/a.mp4", "size": 720, "type": "video/mp4"}"#
        func wrap(_ sources: String) -> String { #"{"video": {"videoId": "v", "title": "t", "sources": \#(sources)}}"# }
        func withSource(_ text: String) -> String { wrap("[\(text)]") }
        let corpus: [(name: String, body: Data, field: String?)] = [
            ("empty body", Data(), nil),
            ("not JSON", Data("video=1".utf8), nil),
            ("truncated JSON", Data(#"{"video": {"videoId": "#.utf8), nil),
            ("invalid UTF-8", Data([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), nil),
            ("a list", Data("[]".utf8), nil),
            ("a string", Data(#""video""#.utf8), nil),
            ("nested 100 deep", Data((String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)).utf8), nil),
            ("no video", Data("{}".utf8), "video"),
            ("video null", Data(#"{"video": null}"#.utf8), "video"),
            ("video a string", Data(#"{"video": "12345"}"#.utf8), "video"),
            ("video empty", Data(#"{"video": {}}"#.utf8), "video"),
            ("sources missing", Data(#"{"video": {"videoId": "v", "title": "t"}}"#.utf8), "video.sources"),
            ("sources empty", Data(wrap("[]").utf8), "video.sources"),
            ("sources not a list", Data(wrap(source).utf8), "video.sources"),
            ("33 sources", Data(wrap("[" + Array(repeating: source, count: 33).joined(separator: ",") + "]").utf8), "video.sources"),
            ("source not an object", Data(wrap(#"["/a.mp4"]"#).utf8), "video.sources[0]"),
            ("src missing", Data(withSource(#"{"size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src a number", Data(withSource(#"{"src": 5, "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src relative", Data(withSource(#"{"src": "a.mp4", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src with ..", Data(withSource(#"{"src": "/../etc/passwd", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src with ?", Data(withSource(#"{"src": "/a.mp4?token=x", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src with #", Data(withSource(#"{"src": "/a.mp4#t=1", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src with a newline", Data(withSource(#"{"src": "/a\nb.mp4", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src with NUL", Data(withSource(#"{"src": "/a\u0000.mp4", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("src oversized", Data(withSource(#"{"src": "/\#(String(repeating: "a", count: 5000))", "size": 720, "type": "video/mp4"}"#).utf8), "video.sources[0].src"),
            ("size a string", Data(withSource(#"{"src": "/a.mp4", "size": "720", "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("size a fraction", Data(withSource(#"{"src": "/a.mp4", "size": 720.5, "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("size a boolean", Data(withSource(#"{"src": "/a.mp4", "size": true, "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("size negative", Data(withSource(#"{"src": "/a.mp4", "size": -1, "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("size huge", Data(withSource(#"{"src": "/a.mp4", "size": 1e400, "type": "video/mp4"}"#).utf8), nil),
            ("size past 2^64", Data(withSource(#"{"src": "/a.mp4", "size": 123456789012345678901234567890, "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("size missing", Data(withSource(#"{"src": "/a.mp4", "type": "video/mp4"}"#).utf8), "video.sources[0].size"),
            ("type oversized", Data(withSource(#"{"src": "/a.mp4", "size": 1, "type": "\#(String(repeating: "t", count: 500))"}"#).utf8), "video.sources[0].type"),
            ("title oversized", Data(#"{"video": {"videoId": "v", "title": "\#(String(repeating: "t", count: 5000))", "sources": [\#(source)]}}"#.utf8), "video.title"),
            ("title missing", Data(#"{"video": {"videoId": "v", "sources": [\#(source)]}}"#.utf8), "video.title"),
            ("videoId oversized", Data(#"{"video": {"videoId": "\#(String(repeating: "v", count: 500))", "title": "t", "sources": [\#(source)]}}"#.utf8), "video.videoId"),
            ("_id a number", Data(#"{"video": {"_id": 5, "videoId": "v", "title": "t", "sources": [\#(source)]}}"#.utf8), "video._id"),
            ("catalogue id not a string", Data(#"{"videoId": 12345}"#.utf8), "videoId"),
        ]
        for entry in corpus {
            let answer = try await video.stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"], body: entry.body)
            #expect(answer.status == 400, "\(entry.name): \(answer.status) \(answer.text)")
            #expect(answer.errorCode == "invalid_body", "\(entry.name): \(answer.text)")
            if let field = entry.field {
                let fields = ((answer.json()?["error"] as? [String: Any])?["fields"] as? [[String: Any]])?.compactMap { $0["field"] as? String }
                #expect(fields?.contains(field) == true, "\(entry.name): \(answer.text)")
            }
        }
        let unknown = try await video.stack.client.request("POST", "/video/token", body: Data(#"{"videoId": "no-such-video"}"#.utf8))
        #expect(unknown.status == 404)
        try await video.catalogue(Data(#"{"title": "t", "sources": [{"src": "/ok.mp4", "size": 1, "type": "video/mp4"}]}"#.utf8), id: "v")
        let good = try await video.stack.client.request("POST", "/video/token", body: Data(withSource(#"{"src": "/ok.mp4", "size": 1, "type": "video/mp4"}"#).utf8))
        #expect(good.status == 200, "the corpus left the workers serving")
    }

    @Test("a bad CDN file stops the worker with one line naming the variable, and no secret")
    func badCDNFile() throws {
        let directory = TestPaths.temporaryDirectory("video-badcdns")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cdns.json")
        try #"{"cdns": [{"name": "a", "address": "/media/protected", "keys": [{"id": "k", "secret": "tooshort-secret"}]}]}"#
            .write(to: file, atomically: true, encoding: .utf8)
        let worker = try ChildProcess(
            "bad", executable: TestPaths.marquee, arguments: ["serve", "--listen", directory.appendingPathComponent("s.sock").path],
            environment: ["MARQUEE_CDNS_FILE": file.path, "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path],
            logDirectory: directory
        )
        #expect(worker.waitForExit(timeout: .seconds(10)) == 78)
        let output = worker.log.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(output == "marquee: invalid MARQUEE_CDNS_FILE: \(file.path): cdns[0].keys[0].secret: must be at least 16 bytes for hmac-sha256")
        #expect(!output.contains("tooshort"))
    }

    /// Waits until the `expires` of `url` is in the past by a whole second, as both nginx and
    /// the verifier count it.
    static func waitPastExpiry(of url: String) async throws {
        let digits = url.components(separatedBy: "expires=").last?.prefix { $0.isNumber }
        let expires = try #require(digits.flatMap { Int($0) })
        let wait = Double(expires + 1) - Date().timeIntervalSince1970 + 0.2
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
    }
}
