import Foundation

/// Spellings of one path that a lenient parser, a decoder or a normaliser could take for it.
/// Each is a raw request target; `query` (without `?`) follows every variant but the one whose
/// point is an empty query.
enum PathVariants {
    static func of(_ path: String, query: String = "") -> [(name: String, target: String)] {
        precondition(path.hasPrefix("/") && path.count > 1)
        let rest = String(path.dropFirst())
        let lastSlash = path.lastIndex(of: "/")!
        let head = path[..<lastSlash]
        let last = path[path.index(after: lastSlash)...]
        let mixedCase = String(path.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
        let withQuery = query.isEmpty ? "" : "?\(query)"
        let variants: [(String, String)] = [
            ("%3F", path + "%3F" + withQuery),
            ("%3f", path + "%3f" + withQuery),
            ("%3F then a query", path + "%3F?limit=5"),
            ("%2F for slashes", "/" + (rest.contains("/") ? rest.replacingOccurrences(of: "/", with: "%2F") : "%2F" + rest) + withQuery),
            ("%2F leading", "/%2F" + rest + withQuery),
            ("doubled slashes", path.replacingOccurrences(of: "/", with: "//") + withQuery),
            ("trailing slash", path + "/" + withQuery),
            (";param", path + ";param" + withQuery),
            (";param mid-path", (head.isEmpty ? "/x;y=1/.." : head + ";x=1") + "/" + last + withQuery),
            ("mixed case", mixedCase + withQuery),
            ("upper case", path.uppercased() + withQuery),
            ("/./", head + "/./" + last + withQuery),
            ("/x/../", head + "/x/../" + last + withQuery),
            ("%2e%2e", head + "/x/%2e%2e/" + last + withQuery),
            ("trailing /.", path + "/." + withQuery),
            ("trailing %20", path + "%20" + withQuery),
            ("trailing %09", path + "%09" + withQuery),
            ("%00", path + "%00" + withQuery),
            ("? then nothing", path + "?"),
            ("a letter encoded", "/%" + String(format: "%02X", rest.utf8.first!) + rest.dropFirst() + withQuery),
        ]
        return variants
    }
}
