import FuzzSupport
@testable import Marquee

/// The query-string decoder: no crash on any bytes, every name non-empty, and what it decodes,
/// encoded again, decodes to the same pairs.
runFuzzer { bytes in
    let query = String(decoding: bytes, as: UTF8.self)
    let pairs = QueryString.decode(query)
    for name in pairs.keys { check(!name.isEmpty, "an empty name was decoded from \(query.debugDescription)") }
    let encoded = pairs.map { "\(percentEncoded($0.key))=\(percentEncoded($0.value))" }.joined(separator: "&")
    let again = QueryString.decode(encoded)
    check(again == pairs, "\(query.debugDescription) decoded to \(pairs), encoded as \(encoded.debugDescription) to \(again)")
    // A name's first spelling wins, as nginx's $arg_ does and the token verifier relies on.
    if let first = query.utf8.split(separator: UInt8(ascii: "&")).first,
       let name = QueryString.percentDecoded(first.prefix { $0 != UInt8(ascii: "=") }), !name.isEmpty,
       let value = QueryString.percentDecoded(first.drop { $0 != UInt8(ascii: "=") }.dropFirst()) {
        check(pairs[name] == value, "the first pair of \(query.debugDescription) gave \(name)=\(pairs[name] ?? "nothing")")
    }
}

/// Every byte but unreserved ones as %XX, so that nothing in a name or value reads as syntax.
func percentEncoded(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.append(byte)
        default:
            out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
        }
    }
    return String(decoding: out, as: UTF8.self)
}
