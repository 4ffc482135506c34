import Foundation
import Testing

/// Hostile and broken requests to every user route: each gets a 4xx, and no worker dies.
@Suite("UsersBadInput", .serialized)
struct UsersBadInputTests {
    struct Case: Sendable {
        var label: String
        var method: String
        var path: String
        var body: Data?
        var token = true

        /// A NUL or a URI over nginx's 8 kB header buffer: nginx answers before any worker.
        var nginxRejectsRequestLine: Bool { path.utf8.count > 8000 || path.contains("%00") }
    }

    @Test("a corpus of over 200 bad requests gets only 4xx, and every worker keeps its pid", arguments: StorageMode.allCases)
    func corpus(_ storage: StorageMode) async throws {
        let stack = try await Stack("users-badinput", workers: 3, storage: storage)
        defer { stack.stop() }
        #expect(try await stack.createUser("victim").status == 201)
        let pids = stack.workers.map(\.pid)

        let cases = Self.cases()
        #expect(cases.count >= 200)
        let answers = await concurrently(cases.count, width: 8) { index in
            let item = cases[index]
            var headers = ["Content-Type": "application/json"]
            if item.token { headers["Authorization"] = "Bearer \(Stack.adminToken)" }
            return (try? await stack.client.request(item.method, item.path, headers: headers, body: item.body).status) ?? 0
        }
        func notClientErrors(_ nginxRejects: Bool) -> [String] {
            zip(cases, answers).filter { $0.0.nginxRejectsRequestLine == nginxRejects && !(400..<500).contains($0.1) }
                .map { "\($0.0.label) (\($0.0.method) \($0.0.path.prefix(80))) → \($0.1)" }
        }
        let wrong = notClientErrors(false)
        #expect(wrong.isEmpty, "not 4xx: \(wrong)")
        // nginx refuses these while it reads the request line, before any worker sees them;
        // its own JSON error pages must still answer 4xx.
        let refusedByNginx = notClientErrors(true)
        #expect(refusedByNginx.isEmpty, "not 4xx: \(refusedByNginx)")

        #expect(stack.workers.count == pids.count)
        #expect(stack.workers.allSatisfy { $0.isRunning })
        #expect(stack.workers.map(\.pid) == pids)
        // Nothing in the corpus created, changed or granted anything.
        let listing = try await stack.admin("GET", "/api/v1/users")
        #expect((listing.json()?["users"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["victim"])
        #expect(try await stack.activeStreams("victim") == [])
    }

    static func json(_ text: String) -> Data { Data(text.utf8) }

    /// Bodies that no user route may accept, whatever fields it wants: even a parser lenient
    /// enough to read them would find no complete request inside.
    static let brokenBodies: [(String, Data)] = {
        var bodies: [(String, Data)] = [
            ("empty", Data()),
            ("space", json(" ")),
            ("truncated", json(#"{"name": "a""#)),
            ("trailing comma", json(#"{"name": "a",}"#)),
            ("single quotes", json("{'name': 'a'}")),
            ("unquoted keys", json("{name: \"a\"}")),
            ("garbage after", json(#"{"name": "a"} x"#)),
            ("two objects", json(#"{"name": "a"}{"subscription": "b"}"#)),
            ("comment", json("{/* c */ \"name\": \"a\"}")),
            ("bad escape", json(#"{"name": "\x41", "subscription": "b"}"#)),
            ("lone surrogate escape", json(#"{"name": "\ud800", "subscription": "b", "stream": "\ud800", "id": "\ud800"}"#)),
            ("NaN", json(#"{"name": NaN}"#)),
            ("unterminated string", json(#"{"name": "abc"#)),
            ("only open brace", json("{")),
            ("only close brace", json("}")),
            ("array", json(#"["name", "subscription"]"#)),
            ("array of object", json(#"[{"name": "a", "subscription": "b", "stream": "s", "id": "victim"}]"#)),
            ("string", json(#""name""#)),
            ("number", json("42")),
            ("null", json("null")),
            ("true", json("true")),
            ("form encoded", json("name=a&subscription=b")),
            ("xml", json("<user><name>a</name></user>")),
            ("invalid UTF-8 0xff", Data([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])),
            ("overlong UTF-8 slash", Data(#"{"id": "..""#.utf8) + Data([0xc0, 0xaf]) + Data(#"", "name": "a", "subscription": "b", "stream": "s"}"#.utf8)),
            ("UTF-8 encoded surrogate", Data(#"{"name": ""#.utf8) + Data([0xed, 0xa0, 0x80]) + Data(#"", "subscription": "b", "stream": "s", "id": "victim"}"#.utf8)),
            ("truncated UTF-8", Data(#"{"name": "a"#.utf8) + Data([0xe2, 0x82])),
            ("UTF-16", "{\"name\": \"a\", \"subscription\": \"b\"}".data(using: .utf16)!),
            ("raw NUL", Data(#"{"name": "a"#.utf8) + Data([0]) + Data(#"", "subscription": "b"}"#.utf8)),
            ("deep 33 objects", json(String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33))),
            ("deep 33 arrays in a field", json(#"{"name": "#+String(repeating: "[", count: 33) + String(repeating: "]", count: 33) + "}")),
            ("deep 10000", json(String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000))),
            ("deep 100000 unclosed", json(String(repeating: "{\"a\":[", count: 100_000))),
            ("huge 20 kB", json(#"{"name": ""# + String(repeating: "a", count: 20_000) + #"", "subscription": "b", "stream": "s", "id": "victim"}"#)),
            ("huge 1.5 MB", json(#"{"pad": ""# + String(repeating: "a", count: 1_500_000) + #""}"#)),
            ("huge 3 MB", Data(repeating: 0x20, count: 3_000_000)),
            ("many keys", json("{" + (0..<2000).map { "\"k\($0)\": \($0)" }.joined(separator: ",") + "}")),
        ]
        bodies.append(("BOM then garbage", Data([0xef, 0xbb, 0xbf]) + json("{name")))
        return bodies
    }()

    /// Values that are no valid string of any field here.
    static var wrongTypes: [(String, Any)] { [
        ("number", 1), ("float", 1.5), ("true", true), ("false", false), ("null", NSNull()),
        ("array", ["a"]), ("empty array", [Any]()), ("object", ["a": "b"]), ("empty object", [String: Any]()),
    ] }

    /// Ids no user or stream may have; as JSON values, and in paths.
    static let oddIds: [(String, String)] = [
        ("dot dot slash", "../"), ("dot dot", ".."), ("dot", "."), ("traversal", "../../etc/passwd"), ("slash", "a/b"),
        ("backslash", "a\\b"), ("empty", ""), ("space", " "), ("inner space", "a b"), ("7 kB", String(repeating: "i", count: 7_000)), ("10 kB", String(repeating: "i", count: 10_000)),
        ("65 chars", String(repeating: "i", count: 65)), ("emoji", "😀"), ("emoji suffix", "user😀"), ("NUL", "a\u{0}b"),
        ("newline", "a\nb"), ("tab", "a\tb"), ("percent", "a%2Fb"), ("query", "a?b=c"), ("hash", "a#b"), ("quote", "a\"b"),
        ("accented", "josé"), ("fullwidth", "ａｂｃ"), ("RTL mark", "a\u{200F}b"), ("zero width", "a\u{200B}b"),
        ("colon", "a:b"), ("asterisk", "*"), ("angle", "<script>"), ("semicolon", "a;b"), ("plus", "a+b"), ("comma", "a,b"),
    ]

    static func cases() -> [Case] {
        var cases: [Case] = []
        let bodyRoutes: [(String, String)] = [
            ("POST", "/api/v1/users"), ("POST", "/api/v1/users/victim/streams"),
            ("POST", "/createuser"), ("POST", "/requeststream"), ("POST", "/removeuser"),
        ]
        for (method, path) in bodyRoutes {
            for (label, body) in brokenBodies {
                cases.append(Case(label: "\(path): \(label)", method: method, path: path, body: body))
            }
        }

        func body(_ object: [String: Any]) -> Data { try! JSONSerialization.data(withJSONObject: object) }
        for (label, value) in wrongTypes {
            cases.append(Case(label: "name \(label)", method: "POST", path: "/api/v1/users", body: body(["name": value, "subscription": "basic"])))
            cases.append(Case(label: "subscription \(label)", method: "POST", path: "/api/v1/users", body: body(["name": "a", "subscription": value])))
            if !(value is NSNull) {
                cases.append(Case(label: "id \(label)", method: "POST", path: "/api/v1/users", body: body(["id": value, "name": "a", "subscription": "b"])))
            }
            cases.append(Case(label: "stream \(label)", method: "POST", path: "/api/v1/users/victim/streams", body: body(["stream": value])))
            cases.append(Case(label: "legacy Name \(label)", method: "POST", path: "/createuser", body: body(["Name": value, "Subscription": "basic"])))
            cases.append(Case(label: "legacy id \(label)", method: "POST", path: "/requeststream", body: body(["id": value, "stream": "s"])))
            cases.append(Case(label: "legacy stream \(label)", method: "POST", path: "/requeststream", body: body(["id": "victim", "stream": value])))
            cases.append(Case(label: "legacy remove id \(label)", method: "POST", path: "/removeuser", body: body(["id": value])))
        }
        for name in ["", "   ", String(repeating: "n", count: 201), String(repeating: "é", count: 5_000), "a\u{0}b", "line\nbreak", "bell\u{7}"] {
            cases.append(Case(label: "name \(name.prefix(10).debugDescription)", method: "POST", path: "/api/v1/users", body: body(["name": name, "subscription": "b"])))
        }
        for subscription in ["", String(repeating: "s", count: 65), "a\u{0}"] {
            cases.append(Case(label: "subscription \(subscription.prefix(10).debugDescription)", method: "POST", path: "/api/v1/users",
                              body: body(["name": "a", "subscription": subscription])))
        }
        cases.append(Case(label: "missing fields", method: "POST", path: "/api/v1/users", body: json("{}")))
        cases.append(Case(label: "missing stream", method: "POST", path: "/api/v1/users/victim/streams", body: json(#"{"Stream": "s"}"#)))

        for (label, id) in oddIds {
            cases.append(Case(label: "body id \(label)", method: "POST", path: "/api/v1/users", body: body(["id": id, "name": "a", "subscription": "b"])))
            cases.append(Case(label: "body stream \(label)", method: "POST", path: "/api/v1/users/victim/streams", body: body(["stream": id])))
            cases.append(Case(label: "legacy body id \(label)", method: "POST", path: "/requeststream", body: body(["id": id, "stream": "s"])))
            let encoded = percentEncoded(id)
            cases.append(Case(label: "path id \(label)", method: "GET", path: "/api/v1/users/\(encoded)"))
            cases.append(Case(label: "path stream \(label)", method: "PUT", path: "/api/v1/users/victim/streams/\(encoded)"))
            cases.append(Case(label: "path stream delete \(label)", method: "DELETE", path: "/api/v1/users/victim/streams/\(encoded)"))
            cases.append(Case(label: "query id \(label)", method: "GET", path: "/getuser?id=\(encoded)"))
        }
        for path in ["/api/v1/users/%FF", "/api/v1/users/%C0%AF", "/api/v1/users/%ED%A0%80", "/api/v1/users/%", "/api/v1/users/%zz",
                     "/getuser?id=%FF", "/getuser?id=%", "/getuser", "/getuser?id=", "/api/v1/users/victim/streams/%FF",
                     "/api/v1/users?limit=abc", "/api/v1/users?limit=0", "/api/v1/users?limit=-5", "/api/v1/users?limit=100000",
                     "/api/v1/users?limit=99999999999999999999999", "/api/v1/users?cursor=abc", "/api/v1/users?cursor=-1",
                     "/api/v1/users?cursor=99999999999999999999", "/api/v1/users?cursor=%FF", "/getallusers?limit=0", "/getallusers?cursor=x"] {
            cases.append(Case(label: "path \(path)", method: "GET", path: path))
        }
        // Wrong methods, unknown users, and the admin routes without a token.
        cases += [
            Case(label: "PATCH user", method: "PATCH", path: "/api/v1/users/victim", body: json("{}")),
            Case(label: "PUT users", method: "PUT", path: "/api/v1/users", body: json("{}")),
            Case(label: "GET streams", method: "GET", path: "/api/v1/users/victim/streams"),
            Case(label: "GET requeststream", method: "GET", path: "/requeststream?id=victim&stream=s"),
            Case(label: "GET removeuser", method: "GET", path: "/removeuser?id=victim"),
            Case(label: "unknown user grant", method: "POST", path: "/api/v1/users/nobody/streams", body: json(#"{"stream": "s"}"#)),
            Case(label: "unknown user legacy grant", method: "POST", path: "/requeststream", body: json(#"{"id": "nobody", "stream": "s"}"#)),
            Case(label: "unknown user heartbeat", method: "PUT", path: "/api/v1/users/nobody/streams/s"),
            Case(label: "inactive stream heartbeat", method: "PUT", path: "/api/v1/users/victim/streams/s"),
            Case(label: "inactive stream release", method: "DELETE", path: "/api/v1/users/victim/streams/s"),
            Case(label: "duplicate user", method: "POST", path: "/api/v1/users", body: json(#"{"id": "victim", "name": "a", "subscription": "b"}"#)),
            Case(label: "no token create", method: "POST", path: "/api/v1/users", body: json(#"{"name": "a", "subscription": "b"}"#), token: false),
            Case(label: "no token grant", method: "POST", path: "/api/v1/users/victim/streams", body: json(#"{"stream": "s"}"#), token: false),
            Case(label: "no token delete", method: "DELETE", path: "/api/v1/users/victim", token: false),
        ]
        return cases
    }

    /// Every byte but unreserved ASCII as %XX, so that the id reaches nginx as it is.
    static func percentEncoded(_ text: String) -> String {
        text.utf8.map { byte in
            let unreserved = (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            return unreserved ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }.joined()
    }
}
