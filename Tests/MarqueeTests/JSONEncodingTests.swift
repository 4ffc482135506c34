import Foundation
import Testing
@testable import Marquee

/// Request bodies are UTF-8 JSON only: a byte order mark, UTF-16, UTF-32 and NUL bytes are
/// refused by the one body parser, on every route that reads a body.
@Suite("JSON body encodings", .serialized)
struct JSONEncodingTests {
    /// `text` in each refused encoding, by name.
    static func refusedEncodings(_ text: String) -> [(name: String, body: Data)] {
        let utf8 = Array(text.utf8)
        func utf16(bigEndian: Bool) -> [UInt8] {
            text.utf16.flatMap { unit in bigEndian ? [UInt8(unit >> 8), UInt8(unit & 0xff)] : [UInt8(unit & 0xff), UInt8(unit >> 8)] }
        }
        func utf32(bigEndian: Bool) -> [UInt8] {
            text.unicodeScalars.flatMap { scalar -> [UInt8] in
                let bytes = (0..<4).map { UInt8(truncatingIfNeeded: scalar.value >> (8 * $0)) }
                return bigEndian ? bytes.reversed() : bytes
            }
        }
        return [
            ("UTF-8 with a BOM", [0xef, 0xbb, 0xbf] + utf8),
            ("UTF-16LE with a BOM", [0xff, 0xfe] + utf16(bigEndian: false)),
            ("UTF-16BE with a BOM", [0xfe, 0xff] + utf16(bigEndian: true)),
            ("UTF-16LE", utf16(bigEndian: false)),
            ("UTF-16BE", utf16(bigEndian: true)),
            ("UTF-32LE with a BOM", [0xff, 0xfe, 0, 0] + utf32(bigEndian: false)),
            ("UTF-32BE with a BOM", [0, 0, 0xfe, 0xff] + utf32(bigEndian: true)),
            ("UTF-32LE", utf32(bigEndian: false)),
            ("UTF-32BE", utf32(bigEndian: true)),
            ("a NUL after the object", utf8 + [0]),
            ("a NUL before the object", [0] + utf8),
            ("a NUL between tokens", Array(utf8.prefix(1)) + [0] + Array(utf8.dropFirst())),
        ].map { ($0.0, Data($0.1)) }
    }

    @Test("the parser refuses a BOM, UTF-16/32 and NUL bytes, deep nesting in UTF-16 included, and reads plain UTF-8")
    func parser() throws {
        let object = #"{"name": "Zoë", "list": [1, 2]}"#
        #expect(try JSONReader.object(Array(object.utf8))["name"] == .string("Zoë"))
        for (name, body) in Self.refusedEncodings(object) {
            #expect(throws: HTTPError.self, "\(name)") { try JSONReader.object(Array(body)) }
        }
        // The check that once let a UTF-16 body past the depth pre-check: 200 levels.
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        for (name, body) in Self.refusedEncodings(deep) {
            #expect(throws: JSONReader.Failure.self, "\(name)") { try JSONReader.parse(Array(body)) }
        }
        #expect(throws: JSONReader.Failure.tooDeep) { try JSONReader.parse(Array(deep.utf8)) }
        #expect(throws: JSONReader.Failure.byteOrderMark) { try JSONReader.parse([0xef, 0xbb, 0xbf] + Array("{}".utf8)) }
        #expect(throws: JSONReader.Failure.nulByte) { try JSONReader.parse(Array("{}".utf8) + [0]) }
        #expect(try JSONReader.parse(Array(#"{"a": "\u0000"}"#.utf8)) == .object(["a": .string("\u{0}")]), "an escaped NUL is text, not a NUL byte")
    }

    @Test("every route that reads a JSON body answers 400 invalid_body to each refused encoding, and 2xx to the same body in UTF-8")
    func throughNginx() async throws {
        let stack = try await Stack("json-encodings", workers: 2, environment: [
            "MARQUEE_SECURE_LINK_SECRET": Stack.secureLinkSecret,
            // Content events start lookups: no test may reach the internet.
            "MARQUEE_VIAPLAY_BASE_URL": "http://127.0.0.1:9", "MARQUEE_TMDB_BASE_URL": "http://127.0.0.1:9",
        ])
        defer { stack.stop() }
        #expect(try await stack.createUser("enc-base").status == 201)
        let video = #"{"title": "Encoded", "sources": [{"src": "/encoded.mp4", "size": 1, "type": "video/mp4"}]}"#
        let routes: [(method: String, path: String, admin: Bool, body: String, success: Int)] = [
            ("POST", "/api/v1/users", true, #"{"id": "enc-new", "name": "Encoded Ünïcode", "subscription": "basic plan"}"#, 201),
            ("POST", "/api/v1/users/enc-base/streams", true, #"{"stream": "enc-stream"}"#, 201),
            // Catalogued here, so that the token route's UTF-8 body below may sign it.
            ("PUT", "/api/v1/videos/encoded", true, video, 201),
            ("POST", "/video/token", false, #"{"video": {"videoId": "encoded", "title": "Encoded", "sources": [{"src": "/encoded.mp4", "size": 1, "type": "video/mp4"}]}}"#, 200),
            ("POST", "/api/v1/content-events", true, #"{"type": "new-content", "url": "https://content.viaplay.se/pc-se/film/arrival-2016"}"#, 202),
        ]
        for route in routes {
            let headers = route.admin ? Stack.adminHeaders : ["Content-Type": "application/json"]
            for (name, body) in Self.refusedEncodings(route.body) {
                let answer = try await stack.client.request(route.method, route.path, headers: headers, body: body)
                #expect(answer.status == 400, "\(route.path), \(name): \(answer.status) \(answer.text)")
                #expect(answer.errorCode == "invalid_body", "\(route.path), \(name): \(answer.text)")
            }
            let plain = try await stack.client.request(route.method, route.path, headers: headers, body: Data(route.body.utf8))
            #expect(plain.status == route.success, "\(route.path) in UTF-8: \(plain.status) \(plain.text)")
        }
        // The legacy routes keep their own error shape: a 4xx, and no user made.
        for (name, body) in Self.refusedEncodings(#"{"id": "enc-legacy", "Name": "Legacy", "Subscription": "basic plan"}"#) {
            let answer = try await stack.client.request("POST", "/createuser", headers: ["Content-Type": "application/json"], body: body)
            #expect((400..<500).contains(answer.status), "/createuser, \(name): \(answer.status) \(answer.text)")
        }
        #expect(try await stack.admin("GET", "/api/v1/users/enc-legacy").status == 404, "no encoded body created the legacy user")
        #expect(try await stack.client.get("/api/v1/health").json()?["status"] as? String == "ok")
    }
}
