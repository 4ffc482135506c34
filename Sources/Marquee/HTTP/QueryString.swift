/// Decodes `application/x-www-form-urlencoded` query strings: `+` is a space, `%XX` a byte.
public enum QueryString {
    public static func decode(_ query: String) -> [String: String] {
        // Over the contiguous UTF-8 bytes by offset: splitting a String splits Characters, and
        // stepping a Substring's UTF-8 view checks every index; each cost a cached trailer hit
        // a tenth of its instructions.
        var query = query
        return query.withUTF8 { bytes in
            var result: [String: String] = [:]
            var pairStart = 0
            while pairStart < bytes.count {
                var pairEnd = pairStart
                while pairEnd < bytes.count && bytes[pairEnd] != UInt8(ascii: "&") { pairEnd += 1 }
                defer { pairStart = pairEnd + 1 }
                guard pairEnd > pairStart else { continue }
                var equals = pairStart
                while equals < pairEnd && bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                guard let name = percentDecoded(UnsafeBufferPointer(rebasing: bytes[pairStart..<equals])), !name.isEmpty,
                      result[name] == nil else { continue }
                let value = equals < pairEnd ? percentDecoded(UnsafeBufferPointer(rebasing: bytes[(equals + 1)..<pairEnd])) : ""
                if let value { result[name] = value }
            }
            return result
        }
    }

    /// nil when an escape is malformed or the bytes are not UTF-8.
    public static func percentDecoded(_ text: Substring) -> String? {
        percentDecoded(text.utf8)
    }

    static func percentDecoded<Bytes: Collection<UInt8>>(_ text: Bytes) -> String? {
        if !text.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
            return String(validating: text, as: UTF8.self)
        }
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
