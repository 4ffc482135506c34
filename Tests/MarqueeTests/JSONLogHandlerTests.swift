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

    @Test("timestamps by arithmetic agree with gmtime_r, leap days and centuries included")
    func timestamps() {
        var samples = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 978_307_199, 4_107_542_399, 4_107_542_400, 253_402_300_799, -1, -86_401]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 { samples.append(Int.random(in: -2_000_000_000...8_000_000_000, using: &generator)) }
        for seconds in samples {
            var line: [UInt8] = []
            JSONLogHandler.appendTimestamp(seconds: seconds, milliseconds: 7, to: &line)
            var parts = tm()
            var time = time_t(seconds)
            gmtime_r(&time, &parts)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.007Z", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                                  parts.tm_hour, parts.tm_min, parts.tm_sec)
            #expect(String(decoding: line, as: UTF8.self) == expected, "at \(seconds)")
        }
    }

    @Test("decimals", arguments: [Int64(0), 7, 10, 200, 504, 1_234_567, -42, .max, .min])
    func decimals(value: Int64) {
        var line: [UInt8] = []
        JSONLogHandler.appendDecimal(value, to: &line)
        #expect(String(decoding: line, as: UTF8.self) == String(value))
    }
}
