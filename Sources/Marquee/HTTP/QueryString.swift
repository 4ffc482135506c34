/// Decodes `application/x-www-form-urlencoded` query strings: `+` is a space, `%XX` a byte.
public enum QueryString {
    public static func decode(_ query: String) -> [String: String] {
        // Over the UTF-8 bytes: splitting a String splits Characters, which cost a cached
        // trailer hit a seventh of its CPU.
        var result: [String: String] = [:]
        let bytes = query.utf8
        var pairStart = bytes.startIndex
        while pairStart < bytes.endIndex {
            let pairEnd = bytes[pairStart...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            let pair = bytes[pairStart..<pairEnd]
            pairStart = pairEnd == bytes.endIndex ? pairEnd : bytes.index(after: pairEnd)
            guard !pair.isEmpty else { continue }
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            guard let name = percentDecoded(pair[..<(equals ?? pair.endIndex)]), !name.isEmpty, result[name] == nil else { continue }
            let value = equals.map { percentDecoded(pair[bytes.index(after: $0)...]) } ?? ""
            if let value { result[name] = value }
        }
        return result
    }

    /// nil when an escape is malformed or the bytes are not UTF-8.
    public static func percentDecoded(_ text: Substring) -> String? {
        percentDecoded(text.utf8)
    }

    static func percentDecoded<Bytes: Collection<UInt8>>(_ text: Bytes) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
