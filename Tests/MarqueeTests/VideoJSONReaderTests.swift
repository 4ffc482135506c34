import Foundation
import Marquee
import Testing

/// JSONReader, which reads the minting body on the hot path instead of JSONSerialization.
@Suite("Video JSON reader")
struct VideoJSONReaderTests {
    func parse(_ text: String) throws(JSONReader.Failure) -> JSONValue {
        try JSONReader.parse(Array(text.utf8))
    }

    @Test("values, numbers and strings as RFC 8259 has them")
    func values() throws {
        #expect(try parse(#" {"a": [true, false, null, 0, -0, 12, -7, 1.5, 1e3, 2E-2, "x"]} "#) == .object(["a": .array([
            .bool(true), .bool(false), .null, .int(0), .int(0), .int(12), .int(-7), .double(1.5), .double(1000), .double(0.02), .string("x"),
        ])]))
        #expect(try parse("123456789012345678901234567890") == .double(Double("123456789012345678901234567890")!))
        #expect(try parse(#""tab\t quote\" slash\/ back\\ \u00e9 \ud83d\ude00""#) == .string("tab\t quote\" slash/ back\\ é 😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse(#"{"k": 1, "k": 2}"#) == .object(["k": .int(2)]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([:]))
    }

    @Test("the earlier service's token request reads as JSONSerialization reads it")
    func fixture() throws {
        let bytes = Array(try Data(contentsOf: VideoFixtures.directory.appendingPathComponent("token-request.json")))
        guard case .object(let top) = try JSONReader.parse(bytes), case .object(let video)? = top["video"],
              case .array(let sources)? = video["sources"], case .object(let first)? = sources.first else {
            Issue.record("unexpected shape")
            return
        }
        #expect(video["videoId"] == .string("12345"))
        #expect(first["src"] == .string("/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4"))
        #expect(first["size"] == .int(1080))
    }

    @Test("malformed documents, deep nesting and invalid UTF-8 are refused")
    func refusals() {
        for text in ["", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{a:1}", "01", "-", ".5", "1.", "1e", "+1", "1e400",
                     "tru", "nul", "\"open", "\"raw\ncontrol\"", "\"\\x\"", "\"\\u12\"", "\"\\udc00\"", "\"\\ud800x\"", "{} {}", "[1] x", "'a'"] {
            #expect(throws: JSONReader.Failure.self, "\(text)") { try parse(text) }
        }
        #expect(throws: JSONReader.Failure.notUTF8) { try JSONReader.parse([0x22, 0xff, 0x22]) }
        let deepest = String(repeating: "[", count: JSONBody.maxDepth) + String(repeating: "]", count: JSONBody.maxDepth)
        #expect(throws: Never.self) { try parse(deepest) }
        #expect(throws: JSONReader.Failure.tooDeep) { try parse("[" + deepest + "]") }
        #expect(throws: JSONReader.Failure.tooDeep) { try parse(String(repeating: "[", count: 100_000)) }
    }

    @Test("a body must be one JSON object; each problem is 400 invalid_body")
    func bodies() throws {
        #expect(try JSONReader.object(Array(#"{"a": 1}"#.utf8)) == ["a": .int(1)])
        for body in ["", "[]", "\"x\"", "{", "null"] {
            do {
                _ = try JSONReader.object(Array(body.utf8))
                Issue.record("accepted \(body)")
            } catch {
                #expect(error.status == 400)
                #expect(error.code == "invalid_body")
            }
        }
    }
}
