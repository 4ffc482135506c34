import Foundation
import Testing
@testable import Marquee

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("strings are escaped as JSON needs, and UTF-8 passes through", arguments: [
        ("plain", #""plain""#),
        ("a \"quoted\" \\ path", #""a \"quoted\" \\ path""#),
        ("line\nbreak\r\ttab", #""line\nbreak\r\ttab""#),
        ("nul \u{0} bell \u{7} unit \u{1f}", #""nul \u0000 bell \u0007 unit \u001f""#),
        ("千と千尋 🎬", #""千と千尋 🎬""#),
    ])
    func quoting(text: String, expected: String) throws {
        var line: [UInt8] = []
        JSONLogHandler.appendQuoted(text, to: &line)
        #expect(String(decoding: line, as: UTF8.self) == expected)
        let decoded = try JSONSerialization.jsonObject(with: Data(line), options: .fragmentsAllowed) as? String
        #expect(decoded == text)
    }
}
