import Crypto
import Foundation
import Testing

/// The internal-only routes through the project's nginx and real workers, with the internal
/// networks narrowed to 127.0.0.1 so that 127.0.0.2 is a client from outside: every spelling
/// of every internal route is refused, by nginx and again by the worker, while the plain
/// spellings still work from inside and media links still verify for outside clients.
@Suite("Internal routes", .serialized)
struct InternalRoutesTests {
    static let outside = "127.0.0.2"
    static let inside = "127.0.0.1"
    static let narrowed = ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1"]

    struct Route {
        var method: String
        var path: String
        var query = ""
        var headers: [String: String] = [:]
        /// A body a route would accept, so that a request let through would show as a 2xx.
        var body: () -> Data? = { nil }
    }

    static let user = "inside-1"

    static func routes(verifiable link: String) -> [Route] {
        let created = Counter()
        return [
            Route(method: "GET", path: "/api/v1/status"),
            Route(method: "GET", path: "/api/v1/tokens/verify", headers: ["X-Original-URI": link]),
            Route(method: "GET", path: "/getuser", query: "id=\(user)"),
            Route(method: "GET", path: "/getallusers", query: "limit=5"),
            Route(method: "POST", path: "/createuser", headers: ["Content-Type": "application/json"]) {
                Data(#"{"id": "outside-\#(created.next())", "Name": "Outside", "Subscription": "basic plan"}"#.utf8)
            },
            Route(method: "POST", path: "/removeuser", headers: ["Content-Type": "application/json"]) { Data(#"{"id": "\#(user)"}"#.utf8) },
            Route(method: "POST", path: "/requeststream", headers: ["Content-Type": "application/json"]) {
                Data(#"{"id": "\#(user)", "stream": "s1"}"#.utf8)
            },
        ]
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        func next() -> Int { value += 1; return value }
    }

    /// A stack with a CDN that binds links to the client's address and one catalogued clip.
    static func videoStack(_ label: String) async throws -> VideoStack {
        let video = try await VideoStack(label, workers: 2, environment: narrowed) { base in
            [VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)],
                                   extra: #", "bindClientIp": true"#)]
        }
        do {
            try video.addMedia("protected", "clip.mp4", Data("not really a movie".utf8))
            let body = Data(#"{"title": "Clip", "sources": [{"src": "/clip.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
            let stored = try await video.stack.client.request("PUT", "/api/v1/videos/clip",
                                                              headers: ["Authorization": "Bearer \(Stack.adminToken)"], body: body)
            guard stored.status == 201 else { throw StackError("catalogue PUT answered \(stored.status): \(stored.text)") }
        } catch {
            video.stop()
            throw error
        }
        return video
    }

    /// Signs the clip for whoever asks from `address`; answers the link's path and query.
    static func mint(_ video: VideoStack, from address: String) throws -> String {
        let answer = try video.stack.raw.send("POST", "/video/token", headers: ["Content-Type": "application/json"],
                                              body: Data(#"{"videoId": "clip"}"#.utf8), from: address)
        let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
        guard answer.status == 200, let url = (json?["sources"] as? [[String: Any]])?.first?["src"] as? String,
              url.hasPrefix(video.base) else {
            throw StackError("minting answered \(answer.status): \(answer.text)")
        }
        return String(url.dropFirst(video.base.count))
    }

    @Test("every spelling of every internal route from outside the internal networks gets 403 or 404; the plain ones work inside")
    func spellingsFromOutside() async throws {
        let video = try await Self.videoStack("internal-spellings")
        defer { video.stop() }
        let raw = video.stack.raw
        let created = try raw.send("POST", "/createuser", headers: ["Content-Type": "application/json"],
                                   body: Data(#"{"id": "\#(Self.user)", "Name": "Inside", "Subscription": "basic plan"}"#.utf8), from: Self.inside)
        #expect(created.status == 200 && created.text == "Inside created", "\(created.text)")
        let link = try Self.mint(video, from: Self.inside)

        var sent = 0
        for route in Self.routes(verifiable: link) {
            for variant in PathVariants.of(route.path, query: route.query) {
                let answer = try raw.send(route.method, variant.target, headers: route.headers, body: route.body(), from: Self.outside)
                sent += 1
                let label = Comment(rawValue: "\(route.method) \(variant.target) (\(variant.name)): \(answer.status) \(answer.text)")
                switch answer.status {
                case 403: #expect(answer.errorCode == "forbidden", label)
                case 404: #expect(answer.errorCode == "not_found", label)
                // nginx refuses a NUL in the path before any location or worker sees it.
                case 400: #expect(variant.name == "%00" && answer.errorCode == "bad_request", label)
                default: Issue.record(label)
                }
            }
            // The plain spelling from outside: nginx's refusal.
            let plain = try raw.send(route.method, route.path + (route.query.isEmpty ? "" : "?\(route.query)"), headers: route.headers,
                                     body: route.body(), from: Self.outside)
            #expect(plain.status == 403 && plain.errorCode == "forbidden", "\(route.path) from outside: \(plain.status)")
        }
        #expect(sent >= 7 * 12)

        // Nothing was changed from outside: the inside user is there, without streams, alone.
        let all = try raw.send("GET", "/getallusers", from: Self.inside)
        #expect(all.status == 200)
        #expect(all.text.contains(Self.user) && !all.text.contains("outside-"), "\(all.text)")

        // The plain spellings from inside.
        #expect(try raw.send("GET", "/api/v1/status", from: Self.inside).status == 200)
        #expect(try raw.send("GET", "/api/v1/tokens/verify", headers: ["X-Original-URI": link], from: Self.inside).status == 204)
        #expect(try raw.send("GET", "/getuser?id=\(Self.user)", from: Self.inside).status == 200)
        let json = ["Content-Type": "application/json"]
        #expect(try raw.send("POST", "/requeststream", headers: json, body: Data(#"{"id": "\#(Self.user)", "stream": "s1"}"#.utf8),
                             from: Self.inside).text == "Request for s1 succesful")
        #expect(try raw.send("POST", "/createuser", headers: json,
                             body: Data(#"{"id": "inside-2", "Name": "Two", "Subscription": "basic plan"}"#.utf8), from: Self.inside).text == "Two created")
        #expect(try raw.send("POST", "/removeuser", headers: json, body: Data(#"{"id": "inside-2"}"#.utf8), from: Self.inside).status == 200)

        // nginx decodes a path once; the worker routes what nginx matched and decodes nothing again.
        let once = try raw.send("GET", "/video/%2541")
        #expect(once.status == 404)
        #expect(once.json()?["error"].flatMap { ($0 as? [String: Any])?["message"] as? String } == "no video %41")
    }

    @Test("a FastCGI request written to the worker socket with a foreign REMOTE_ADDR gets 403 on every internal route")
    func foreignAddressOnTheSocket() async throws {
        let video = try await Self.videoStack("internal-fastcgi")
        defer { video.stop() }
        let link = try Self.mint(video, from: Self.inside)
        func send(_ route: Route, remote: String, extra: [(String, String)] = []) throws -> HTTPAnswer {
            let body = Array(route.body() ?? Data())
            var params = [("REQUEST_METHOD", route.method), ("DOCUMENT_URI", route.path), ("QUERY_STRING", route.query),
                          ("REQUEST_URI", route.path + (route.query.isEmpty ? "" : "?\(route.query)")), ("REMOTE_ADDR", remote),
                          ("SERVER_PROTOCOL", "HTTP/1.1"), ("CONTENT_LENGTH", String(body.count)), ("HTTP_X_REQUEST_ID", "fastcgi-test-1")]
            params += route.headers.map { ("HTTP_" + $0.key.uppercased().replacingOccurrences(of: "-", with: "_"), $0.value) }
            return try FastCGIClient.send(socket: video.stack.socketPath, params: params + extra, body: body)
        }
        for route in Self.routes(verifiable: link) {
            for remote in ["203.0.113.9", Self.outside, "10.1.2.3", "::ffff:203.0.113.9", "2001:db8::9", "not an address", ""] {
                let answer = try send(route, remote: remote)
                #expect(answer.status == 403 && answer.errorCode == "forbidden", "\(route.path) from '\(remote)': \(answer.status) \(answer.text)")
            }
        }
        let verify = Self.routes(verifiable: link)[1]
        // The auth subrequest's client param counts only behind a loopback REMOTE_ADDR.
        let claimed = try send(verify, remote: "203.0.113.9", extra: [("ORIGINAL_REMOTE_ADDR", "127.0.0.1")])
        #expect(claimed.status == 403 && claimed.errorCode == "forbidden")
        // The same records with a loopback REMOTE_ADDR are answered: the refusals above are the rule's.
        let status = try send(Self.routes(verifiable: link)[0], remote: "127.0.0.1")
        #expect(status.status == 200)
        #expect(status.header("X-Content-Type-Options") == "nosniff")
        #expect(status.header("X-Request-Id") == "fastcgi-test-1")
        #expect(try send(Self.routes(verifiable: link)[0], remote: "::ffff:127.0.0.1").status == 200)
        #expect(try send(verify, remote: "127.0.0.1").status == 204)
    }

    @Test("a link bound to an outside client verifies for that client through /media/protected/, and for no one else")
    func protectedMediaFromOutside() async throws {
        let video = try await Self.videoStack("internal-media")
        defer { video.stop() }
        let raw = video.stack.raw
        let link = try Self.mint(video, from: Self.outside)
        #expect(link.hasPrefix("/media/protected/clip.mp4?"))
        let served = try raw.send("GET", link, from: Self.outside)
        #expect(served.status == 200, "\(served.text)")
        #expect(served.text == "not really a movie")
        #expect(served.header("X-Content-Type-Options") == "nosniff")
        let elsewhere = try raw.send("GET", link, from: Self.inside)
        #expect(elsewhere.status == 403)
        // Inside, the verifier itself also binds to the client nginx names, not to its own loopback.
        #expect(try raw.send("GET", try Self.mint(video, from: Self.inside), from: Self.inside).status == 200)
    }

    @Test("with MARQUEE_LEGACY_USERS=open, nginx and the workers let outside clients call the legacy routes, and only those")
    func openLegacyUsers() async throws {
        let stack = try await Stack("internal-open", workers: 1, environment: Self.narrowed.merging(["MARQUEE_LEGACY_USERS": "open"]) { _, new in new })
        defer { stack.stop() }
        let created = try stack.raw.send("POST", "/createuser", headers: ["Content-Type": "application/json"],
                                         body: Data(#"{"id": "open-1", "Name": "Open", "Subscription": "basic plan"}"#.utf8), from: Self.outside)
        #expect(created.status == 200 && created.text == "Open created", "\(created.text)")
        #expect(try stack.raw.send("GET", "/getuser?id=open-1", from: Self.outside).status == 200)
        #expect(try stack.raw.send("GET", "/api/v1/status", from: Self.outside).status == 403)
        #expect(try stack.raw.send("GET", "/api/v1/status%3F", from: Self.outside).status == 403)
    }
}
