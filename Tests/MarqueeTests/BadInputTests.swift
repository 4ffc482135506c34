import Foundation
import Synchronization
import Testing

/// What an attacker from the internet can send, across every route family, through the
/// project's nginx to real workers: path spellings, bodies, headers, tokens, and enough
/// anonymous writes to fill a small store. Every answer is a 4xx JSON error or the route's
/// documented success; no 5xx, no worker restarts, and health is ok at the end.
@Suite("BadInput", .serialized)
struct BadInputTests {
    struct Case: Sendable {
        var label: String
        var method: String
        var target: String
        var headers: [(String, String)] = []
        var body: Data?
        /// From outside the internal networks (127.0.0.2) or from loopback.
        var outside = true
        /// Successes the route documents for this request; empty when only a refusal is right.
        var successes: Set<Int> = []
        /// Internal routes from outside must be refused as such, or not be found at all.
        var deniedOnly = false
        /// A raw request written as it is, for what no well-formed request line can carry.
        var raw: Data?
    }

    static let outside = "127.0.0.2"
    static let video = "clip"
    static let otherVideo = "other"

    @Test("over 300 hostile requests: only 4xx JSON or documented successes, same worker pids, health ok")
    func corpus() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let suite = try await Self.stack(fake, label: "badinput")
        defer { suite.stop() }
        let stack = suite.stack
        try await Self.catalogue(suite)
        let pids = stack.workers.map(\.pid)
        let minted = try await Self.mint(suite, Self.video)

        let cases = Self.pathCases() + Self.bodyCases() + Self.headerCases() + Self.tokenCases(minted: minted, base: suite.base)
        #expect(cases.count >= 300, "\(cases.count) cases")
        let families = Dictionary(grouping: cases, by: { $0.label.split(separator: ":").first.map(String.init) ?? "" }).mapValues(\.count)
        print("bad-input corpus: \(cases.count) cases \(families.sorted { $0.key < $1.key })")

        var wrong: [String] = []
        for item in cases {
            let source = item.outside ? Self.outside : "127.0.0.1"
            let answer: HTTPAnswer
            do {
                if let raw = item.raw {
                    answer = try stack.raw.exchange(raw, from: source)
                } else {
                    answer = try stack.raw.send(item.method, item.target, headerList: item.headers, body: item.body, from: source)
                }
            } catch {
                wrong.append("\(item.label) [\(item.method) \(item.target.prefix(120))]: \(error)")
                continue
            }
            if let problem = Self.problem(with: answer, for: item) {
                wrong.append("\(item.label) [\(item.method) \(item.target.prefix(120))] → \(answer.status) \(problem): \(answer.text.prefix(160))")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(cases.count) cases went wrong:\n\(wrong.joined(separator: "\n"))")

        // A protocol nginx does not speak is the one refusal that is not a 4xx: RFC 9110 names 505.
        let version = try stack.raw.exchange(Data("GET /api/v1/health HTTP/2.0\r\nHost: a\r\n\r\n".utf8), from: Self.outside)
        #expect(version.status == 505)
        #expect(version.errorCode == "http_version_not_supported")

        #expect(stack.workers.allSatisfy { $0.isRunning }, "every worker still runs")
        #expect(stack.workers.map(\.pid) == pids, "no worker was restarted")
        let health = try stack.raw.send("GET", "/api/v1/health")
        #expect(health.status == 200, "health at the end: \(health.text)")
        #expect((health.json()?["status"] as? String) == "ok", "health at the end: \(health.text)")
        // Nothing from outside reached the internal user routes.
        #expect(try await stack.admin("GET", "/api/v1/users/intruder").status == 404)
        #expect(try await stack.activeStreams("victim") == [])
    }

    @Test("anonymous writes with large user agents cannot exhaust a small store: users and streams still find room")
    func storeExhaustion() async throws {
        let fake = try FakeUpstream()
        defer { fake.stop() }
        let suite = try await Self.stack(fake, label: "badinput-store", environment: ["MARQUEE_STORE_MAX_MB": "16"])
        defer { suite.stop() }
        let stack = suite.stack
        try await Self.catalogue(suite)
        let pids = stack.workers.map(\.pid)

        // Distinct user agents of 8 kB (combining marks make each character three bytes long),
        // reads of catalogued and unknown videos, mints, and trailer lookups of unknown films:
        // everything an anonymous client can make the store keep.
        let agent = String(repeating: "a\u{0301}\u{0302}", count: 1_400)
        let rounds = 1_500
        let wrong = Mutex<[String]>([])
        let raw = stack.raw
        DispatchQueue.concurrentPerform(iterations: 8) { lane in
            for round in stride(from: lane, to: rounds, by: 8) {
                let requests: [(String, String, Data?, Set<Int>)] = [
                    ("GET", "/video/\(Self.video)", nil, [200]),
                    ("GET", "/video/unknown-\(round)", nil, [404]),
                    ("POST", "/video/token", Data(#"{"videoId": "\#(Self.video)"}"#.utf8), [200]),
                    ("GET", TrailersFixtures.path("https://content.viaplay.se/pc-se/film/unknown-\(round)"), nil, [404]),
                ]
                for (method, target, body, expected) in requests {
                    let headers = [("User-Agent", "\(round)-\(lane) \(agent)"), ("Content-Type", "application/json")]
                    do {
                        let answer = try raw.send(method, target, headerList: headers, body: body, from: Self.outside)
                        if !expected.contains(answer.status) {
                            wrong.withLock { $0.append("\(method) \(target) → \(answer.status) \(answer.text.prefix(160))") }
                        }
                    } catch {
                        wrong.withLock { $0.append("\(method) \(target): \(error)") }
                    }
                }
            }
        }
        let failures = wrong.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.count) anonymous writes were not answered as documented:\n\(failures.prefix(20).joined(separator: "\n"))")

        #expect(try await stack.createUser("after-the-flood").status == 201, "a user can still be created")
        #expect(try await stack.grant("after-the-flood", "s1").status == 201, "a stream can still be granted")
        #expect(stack.workers.map(\.pid) == pids, "no worker was restarted")
        let health = try stack.raw.send("GET", "/api/v1/health")
        #expect(health.status == 200, "health at the end: \(health.text)")
    }

    // MARK: - The stack

    /// Workers with the trailer upstreams on the fake, one hmac CDN for /media/protected and one
    /// nginx-secure-link CDN for /media/secure, and the internal networks narrowed to 127.0.0.1,
    /// so that 127.0.0.2 is a client from outside.
    static func stack(_ fake: FakeUpstream, label: String, environment: [String: String] = [:]) async throws -> VideoStack {
        let workerEnvironment = TrailersFixtures.environment(fake, [
            "MARQUEE_GHIBLI_BASE_URL": fake.baseURL,
            "MARQUEE_INTERNAL_NETWORKS": "127.0.0.1/32",
        ]).merging(environment) { _, new in new }
        return try await VideoStack(label, workers: 2, environment: workerEnvironment) { base in [
            VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)]),
            #"{"name": "secure", "address": "\#(base)/media/secure", "scheme": "nginx-secure-link", "keys": [{"id": "s1", "secret": "\#(Stack.secureLinkSecret)"}]}"#,
        ] }
    }

    /// Two catalogued videos, their media files, and the user the corpus must leave alone.
    static func catalogue(_ suite: VideoStack) async throws {
        for (id, file) in [(video, "clip.mp4"), (otherVideo, "other.mp4")] {
            let body: [String: Any] = ["videoId": id, "title": "A \(id)", "sources": [["src": "/\(file)", "size": 720, "type": "video/mp4"]]]
            let answer = try await suite.stack.admin("PUT", "/api/v1/videos/\(id)", json: body)
            guard (200..<300).contains(answer.status) else { throw StackError("cataloguing \(id): \(answer.status) \(answer.text)") }
            try suite.addMedia("protected", file, Data("bytes of \(file)\n".utf8))
            try suite.addMedia("secure", file, Data("bytes of \(file)\n".utf8))
        }
        let user = try await suite.stack.createUser("victim")
        guard user.status == 201 else { throw StackError("creating victim: \(user.status) \(user.text)") }
    }

    /// The signed URLs for `videoId`, one per CDN, as paths on this nginx.
    static func mint(_ suite: VideoStack, _ videoId: String) async throws -> [String] {
        let answer = try await suite.stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"],
                                                          body: Data(#"{"videoId": "\#(videoId)"}"#.utf8))
        guard answer.status == 200, let sources = answer.json()?["sources"] as? [[String: Any]] else {
            throw StackError("minting \(videoId): \(answer.status) \(answer.text)")
        }
        return sources.compactMap { ($0["src"] as? String).map { String($0.dropFirst(suite.base.count)) } }
    }

    // MARK: - Judging an answer

    /// Why `answer` is wrong for `item`, or nil when it is right.
    static func problem(with answer: HTTPAnswer, for item: Case) -> String? {
        if item.successes.contains(answer.status) { return nil }
        if item.deniedOnly && ![400, 403, 404].contains(answer.status) { return "an internal route answered from outside" }
        guard (400..<500).contains(answer.status) else { return "neither a 4xx nor a documented success" }
        guard answer.header("Content-Type")?.hasPrefix("application/json") == true else {
            return "a refusal that is not JSON (\(answer.header("Content-Type") ?? "no Content-Type"))"
        }
        guard answer.errorCode?.isEmpty == false else { return "a JSON refusal without an error code" }
        guard answer.header("X-Content-Type-Options") == "nosniff" else { return "no X-Content-Type-Options: nosniff" }
        return nil
    }

    // MARK: - Path spellings

    /// The shared spellings of the internal-route tests, and a few more that only a lenient
    /// parser would take for the path.
    static func spellings(of path: String) -> [(String, String)] {
        let inner = String(path.dropFirst())
        return PathVariants.of(path).map { ($0.name, $0.target) } + [
            ("%2f for slashes", "/" + inner.replacingOccurrences(of: "/", with: "%2f")),
            ("%252F", "/" + inner.replacingOccurrences(of: "/", with: "%252F")),
            ("doubled leading slash", "/" + path),
            ("trailing dot", path + "."),
            ("backslashes", path.replacingOccurrences(of: "/", with: "\\")),
            ("absolute form", "http://127.0.0.1" + path),
            ("plain", path),
        ]
    }

    static func pathCases() -> [Case] {
        var cases: [Case] = []
        let intruder = Data(#"{"Name": "Intruder", "Subscription": "basic plan", "id": "intruder", "stream": "s9"}"#.utf8)
        let internalRoutes: [(String, String, Data?)] = [
            ("GET", "/api/v1/status", nil),
            ("GET", "/api/v1/tokens/verify", nil),
            ("GET", "/getallusers", nil),
            ("GET", "/getuser", nil),
            ("POST", "/createuser", intruder),
            ("POST", "/removeuser", Data(#"{"id": "victim"}"#.utf8)),
            ("POST", "/requeststream", Data(#"{"id": "victim", "stream": "s9"}"#.utf8)),
        ]
        for (method, path, body) in internalRoutes {
            for (variant, target) in spellings(of: path) {
                let query = target.contains("?") ? "" : (method == "GET" ? "?limit=5&id=victim" : "")
                cases.append(Case(label: "internal: \(method) \(path) \(variant)", method: method, target: target + query,
                                  headers: [("Content-Type", "application/json")], body: body, deniedOnly: true))
            }
        }
        let publicRoutes: [(String, String, [(String, String)], Set<Int>)] = [
            ("/api/v1/health", "", [], [200]),
            ("/api/v1/movies", "", [], [200]),
            ("/movies/", "", [], [200]),
            ("/video/\(video)", "", [], [200]),
            ("/api/v1/trailers", "?url=https%3A%2F%2Fexample.com%2Ffilm", [], []),
            ("/api/v1/users", "?limit=2", [("Authorization", "Bearer \(Stack.adminToken)")], [200]),
        ]
        for (path, query, headers, successes) in publicRoutes {
            for (variant, target) in spellings(of: path) {
                let full = target.hasSuffix("?") ? target + query.dropFirst() : (target.contains("?") ? target : target + query)
                cases.append(Case(label: "public: GET \(path) \(variant)", method: "GET", target: full, headers: headers, successes: successes))
            }
        }
        return cases
    }

    // MARK: - Bodies

    static func bodyCases() -> [Case] {
        var bodies = UsersBadInputTests.brokenBodies
        let valid = #"{"videoId": "clip", "name": "a", "subscription": "b", "type": "new-content", "url": "https://content.viaplay.se/pc-se/film/arrival-2016"}"#
        bodies += [
            ("BOM then valid JSON", Data([0xef, 0xbb, 0xbf]) + Data(valid.utf8)),
            ("UTF-16 little-endian", valid.data(using: .utf16LittleEndian)!),
            ("UTF-16 big-endian", valid.data(using: .utf16BigEndian)!),
            ("UTF-32", valid.data(using: .utf32LittleEndian)!),
            ("NUL after valid JSON", Data(valid.utf8) + Data([0])),
        ]
        let routes: [(String, String, Bool)] = [
            ("POST", "/video/token", false),
            ("POST", "/api/v1/users", true),
            ("POST", "/api/v1/content-events", true),
            ("PUT", "/api/v1/videos/\(otherVideo)", true),
        ]
        var cases: [Case] = []
        for (method, path, admin) in routes {
            for (label, body) in bodies {
                var headers = [("Content-Type", "application/json")]
                if admin { headers.append(("Authorization", "Bearer \(Stack.adminToken)")) }
                cases.append(Case(label: "body: \(path) \(label)", method: method, target: path, headers: headers, body: body))
            }
        }
        return cases
    }

    // MARK: - Headers

    static func headerCases() -> [Case] {
        let token = Stack.adminToken
        let mintBody = Data(#"{"videoId": "clip"}"#.utf8)
        func request(_ head: String, _ body: String = "") -> Data { Data((head.replacingOccurrences(of: "\n", with: "\r\n") + body).utf8) }
        var cases: [Case] = [
            Case(label: "headers: no Authorization", method: "GET", target: "/api/v1/users"),
            Case(label: "headers: Bearer without a token", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer")]),
            Case(label: "headers: wrong token", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer \(token.dropLast())x")]),
            Case(label: "headers: token with a suffix", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer \(token)x")]),
            Case(label: "headers: token prefix", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer \(token.prefix(5))")]),
            Case(label: "headers: Basic scheme", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Basic \(Data(token.utf8).base64EncodedString())")]),
            Case(label: "headers: 8 kB token", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer " + String(repeating: "t", count: 8_000))]),
            Case(label: "headers: two Authorization headers", method: "GET", target: "/api/v1/users",
                 headers: [("Authorization", "Bearer wrong"), ("Authorization", "Bearer \(token)")], successes: [200]),
            Case(label: "headers: token with a non-ASCII byte", method: "GET", target: "/api/v1/users", headers: [("Authorization", "Bearer \(token)é")]),
            Case(label: "headers: 40 kB header", method: "GET", target: "/api/v1/health", headers: [("X-Pad", String(repeating: "p", count: 40_000))]),
            Case(label: "headers: 40 kB cookie", method: "GET", target: "/movies/", headers: [("Cookie", "a=" + String(repeating: "c", count: 40_000))]),
            Case(label: "headers: 300 headers", method: "GET", target: "/api/v1/health", headers: (0..<300).map { ("X-H\($0)", "v") }, successes: [200]),
            Case(label: "headers: 15 kB user agent on a video read", method: "GET", target: "/video/\(video)",
                 headers: [("User-Agent", String(repeating: "u\u{0301}", count: 5_000))], successes: [200]),
            Case(label: "headers: garbage X-Forwarded-For on a video read", method: "GET", target: "/video/\(video)",
                 headers: [("X-Forwarded-For", "not-an-address, 999.1.1.1, ::zz")], successes: [200]),
            Case(label: "headers: garbage X-Forwarded-For on a mint", method: "POST", target: "/video/token",
                 headers: [("X-Forwarded-For", "\u{7f}\u{1}, , ;;"), ("Content-Type", "application/json")], body: mintBody, successes: [200]),
            Case(label: "headers: garbage If-None-Match", method: "GET", target: "/movies/", headers: [("If-None-Match", "\"\u{1}zz, W/")], successes: [200]),
            Case(label: "headers: garbage If-Modified-Since", method: "GET", target: "/api/v1/movies", headers: [("If-Modified-Since", "yesterday")], successes: [200]),
            Case(label: "headers: client X-Request-Id", method: "GET", target: "/api/v1/health",
                 headers: [("X-Request-Id", "\u{1b}[31mforged\n")], successes: [200]),
            Case(label: "headers: text/plain mint", method: "POST", target: "/video/token", headers: [("Content-Type", "text/plain")], body: mintBody, successes: [200]),
            Case(label: "headers: UTF-16 declared, UTF-8 sent", method: "POST", target: "/video/token",
                 headers: [("Content-Type", "application/json; charset=utf-16")], body: mintBody, successes: [200]),
            Case(label: "headers: Content-Length not a number", method: "POST", target: "/video/token",
                 headers: [("Content-Length", "abc")], body: mintBody),
            Case(label: "headers: negative Content-Length", method: "POST", target: "/video/token",
                 headers: [("Content-Length", "-5")], body: mintBody),
            Case(label: "headers: Content-Length and chunked", method: "POST", target: "/video/token",
                 headers: [("Content-Length", "19"), ("Transfer-Encoding", "chunked")], body: Data("13\r\n{\"videoId\": \"clip\"}\r\n0\r\n\r\n".utf8)),
            Case(label: "headers: bad chunk size", method: "POST", target: "/video/token",
                 headers: [("Transfer-Encoding", "chunked")], body: Data("zz\r\n{}\r\n0\r\n\r\n".utf8)),
            Case(label: "headers: chunked 3 MB", method: "POST", target: "/video/token",
                 headers: [("Transfer-Encoding", "chunked")], body: Data("300000\r\n".utf8) + Data(repeating: 0x20, count: 0x300000) + Data("\r\n0\r\n\r\n".utf8)),
            Case(label: "headers: TRACE", method: "TRACE", target: "/api/v1/health"),
            Case(label: "headers: unknown method", method: "BREW", target: "/api/v1/health"),
            Case(label: "headers: DELETE on health", method: "DELETE", target: "/api/v1/health"),
            Case(label: "headers: OPTIONS on the movies page", method: "OPTIONS", target: "/movies/"),
            Case(label: "headers: PUT on a video read", method: "PUT", target: "/video/\(video)", body: mintBody),
        ]
        let raw: [(String, Data, Set<Int>)] = [
            ("no Host on HTTP/1.1", request("GET /api/v1/health HTTP/1.1\nConnection: close\n\n"), []),
            ("two Host headers", request("GET /api/v1/health HTTP/1.1\nHost: a\nHost: b\nConnection: close\n\n"), []),
            ("Host with a space", request("GET /api/v1/health HTTP/1.1\nHost: a b\nConnection: close\n\n"), []),
            ("header without a colon", request("GET /api/v1/health HTTP/1.1\nHost: a\nNoColonHere\nConnection: close\n\n"), [200]),
            ("header name with a space", request("GET /api/v1/health HTTP/1.1\nHost: a\nBad Name: v\nConnection: close\n\n"), []),
            ("NUL in a header", Data("GET /api/v1/health HTTP/1.1\r\nHost: a\r\nX-A: a".utf8) + Data([0]) + Data("b\r\nConnection: close\r\n\r\n".utf8), []),
            ("lower-case method", request("get /api/v1/health HTTP/1.1\nHost: a\nConnection: close\n\n"), []),
            ("space in the path", request("GET /api/v1/he alth HTTP/1.1\nHost: a\nConnection: close\n\n"), []),
            ("obsolete line folding", request("GET /api/v1/health HTTP/1.1\nHost: a\nX-A: a\n b\nConnection: close\n\n"), []),
            ("bare LF line ends with a body", Data("POST /video/token HTTP/1.1\nHost: a\nContent-Length: 2\nConnection: close\n\n{}".utf8), []),
            ("20 kB request line", request("GET /api/v1/health?\(String(repeating: "q", count: 20_000)) HTTP/1.1\nHost: a\nConnection: close\n\n"), []),
        ]
        for (label, bytes, successes) in raw {
            cases.append(Case(label: "headers: raw \(label)", method: "RAW", target: label, successes: successes, raw: bytes))
        }
        return cases
    }

    // MARK: - Tokens

    /// `minted` holds the signed paths for the catalogued video: hmac first, secure link second.
    static func tokenCases(minted: [String], base: String) -> [Case] {
        let hmac = minted.first { $0.hasPrefix("/media/protected/") } ?? "/media/protected/clip.mp4?expires=0&kid=k1&sig=x"
        let secure = minted.first { $0.hasPrefix("/media/secure/") } ?? "/media/secure/clip.mp4?md5=x&expires=0"
        func replacing(_ name: String, in url: String, with value: String) -> String {
            guard let range = url.range(of: "\(name)=") else { return url }
            let end = url[range.upperBound...].firstIndex(of: "&") ?? url.endIndex
            return url.replacingCharacters(in: range.upperBound..<end, with: value)
        }
        func removing(_ name: String, from url: String) -> String {
            let parts = url.split(separator: "?", maxSplits: 1)
            let kept = parts[1].split(separator: "&").filter { !$0.hasPrefix("\(name)=") }
            return "\(parts[0])?\(kept.joined(separator: "&"))"
        }
        let expires = hmac.range(of: "expires=").map { hmac[$0.upperBound...].prefix { $0.isNumber } }.map(String.init) ?? "0"
        var targets: [(String, String)] = [
            ("hmac without a query", String(hmac.prefix { $0 != "?" })),
            ("hmac without expires", removing("expires", from: hmac)),
            ("hmac without kid", removing("kid", from: hmac)),
            ("hmac without sig", removing("sig", from: hmac)),
            ("hmac expires with a plus", replacing("expires", in: hmac, with: "%2B" + expires)),
            ("hmac expires with a leading zero", replacing("expires", in: hmac, with: "0" + expires)),
            ("hmac expires with a space", replacing("expires", in: hmac, with: "%20" + expires)),
            ("hmac expires of 13 digits", replacing("expires", in: hmac, with: "9" + expires + "0")),
            ("hmac expires in full-width digits", replacing("expires", in: hmac, with: "%EF%BC%91%EF%BC%92")),
            ("hmac expires negative", replacing("expires", in: hmac, with: "-1")),
            ("hmac expires in the past", replacing("expires", in: hmac, with: "1000000000")),
            ("hmac expires hexadecimal", replacing("expires", in: hmac, with: "0x7fffffff")),
            ("hmac sig changed", replacing("sig", in: hmac, with: "AAAA" + String(hmac.suffix(20)))),
            ("hmac sig empty", replacing("sig", in: hmac, with: "")),
            ("hmac sig 10 kB", replacing("sig", in: hmac, with: String(repeating: "A", count: 10_000))),
            ("hmac sig not base64", replacing("sig", in: hmac, with: "%FF%FE!!")),
            ("hmac kid unknown", replacing("kid", in: hmac, with: "k9")),
            ("hmac kid empty", replacing("kid", in: hmac, with: "")),
            ("hmac signature of another file", hmac.replacingOccurrences(of: "clip.mp4", with: "other.mp4")),
            ("hmac traversal to another file", hmac.replacingOccurrences(of: "clip.mp4", with: "x/../other.mp4")),
            ("hmac dot-dot after the signed file", hmac.replacingOccurrences(of: "clip.mp4?", with: "clip.mp4/../other.mp4?")),
            ("hmac encoded traversal", hmac.replacingOccurrences(of: "clip.mp4", with: "x%2F..%2Fother.mp4")),
            ("hmac parameters twice", hmac + "&expires=9999999999&sig=x"),
            ("hmac %00 after the file", hmac.replacingOccurrences(of: "clip.mp4", with: "clip.mp4%00")),
            ("hmac %3F inside the path", hmac.replacingOccurrences(of: "clip.mp4?", with: "clip.mp4%3F")),
            ("secure md5 changed", replacing("md5", in: secure, with: "AAAAAAAAAAAAAAAAAAAAAA")),
            ("secure md5 empty", replacing("md5", in: secure, with: "")),
            ("secure without md5", removing("md5", from: secure)),
            ("secure without expires", removing("expires", from: secure)),
            ("secure expires in the past", replacing("expires", in: secure, with: "1000000000")),
            ("secure another file", secure.replacingOccurrences(of: "clip.mp4", with: "other.mp4")),
            ("secure traversal", secure.replacingOccurrences(of: "clip.mp4", with: "../protected/clip.mp4")),
        ]
        targets.append(("plain protected file", "/media/protected/clip.mp4"))
        var cases = targets.map { Case(label: "tokens: \($0.0)", method: "GET", target: $0.1) }
        cases.append(Case(label: "tokens: the valid hmac link", method: "GET", target: hmac, successes: [200]))
        cases.append(Case(label: "tokens: the valid secure link", method: "GET", target: secure, successes: [200]))

        // The verifier as nginx's subrequest reaches it, asked directly from loopback.
        for (label, original) in [("empty", ""), ("garbage", "%%%"), ("no query", "/media/protected/clip.mp4"), ("absolute URL", "http://evil.example\(hmac)"),
                                  ("10 kB", "/media/protected/" + String(repeating: "x", count: 10_000)), ("traversal", hmac.replacingOccurrences(of: "/media/protected/", with: "/media/protected/../"))] {
            cases.append(Case(label: "tokens: verifier with \(label) X-Original-URI", method: "GET", target: "/api/v1/tokens/verify",
                              headers: [("X-Original-URI", original)], outside: false))
        }

        // Minting what the catalogue does not hold.
        let mints: [(String, String)] = [
            ("unknown video", #"{"videoId": "no-such-video"}"#),
            ("unknown source", #"{"video": {"videoId": "clip", "title": "t", "sources": [{"src": "/premium.mp4", "size": 1, "type": "video/mp4"}]}}"#),
            ("another video's source", #"{"video": {"videoId": "clip", "title": "t", "sources": [{"src": "/other.mp4", "size": 720, "type": "video/mp4"}]}}"#),
            ("source of no video", #"{"video": {"sources": [{"src": "/premium.mp4"}]}}"#),
            ("traversal", #"{"video": {"videoId": "clip", "title": "t", "sources": [{"src": "/../clip.mp4", "size": 720, "type": "video/mp4"}]}}"#),
            ("encoded traversal", #"{"video": {"videoId": "clip", "title": "t", "sources": [{"src": "/%2e%2e/clip.mp4", "size": 720, "type": "video/mp4"}]}}"#),
        ]
        for (label, body) in mints {
            cases.append(Case(label: "tokens: mint \(label)", method: "POST", target: "/video/token",
                              headers: [("Content-Type", "application/json")], body: Data(body.utf8)))
        }
        return cases
    }
}
