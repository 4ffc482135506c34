import CFastCGI

/// One request as nginx passed it. Valid only while the responder runs: libfcgi frees the
/// params and streams when the request finishes, so everything kept is copied out.
public struct FastCGIRequest {
    let raw: UnsafeMutablePointer<FCGX_Request>

    init(raw: UnsafeMutablePointer<FCGX_Request>) {
        self.raw = raw
    }

    /// A FastCGI param (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH,
    /// REMOTE_ADDR, HTTP_*, …), copied out.
    public func param(_ name: String) -> String? {
        guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
        return String(cString: value)
    }

    /// An HTTP request header by its HTTP name, as nginx passes it (`User-Agent` → HTTP_USER_AGENT).
    public func header(_ name: String) -> String? {
        param("HTTP_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 }))
    }

    public var method: String { param("REQUEST_METHOD") ?? "GET" }

    /// The path of REQUEST_URI, without the query string.
    public var path: String {
        let uri = param("DOCUMENT_URI") ?? param("REQUEST_URI") ?? "/"
        return uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
    }

    public var queryString: String { param("QUERY_STRING") ?? "" }

    /// Every param, for diagnostics.
    public var allParams: [String: String] {
        var params: [String: String] = [:]
        var cursor = raw.pointee.envp
        while let pointer = cursor?.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                params[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor = cursor?.advanced(by: 1)
        }
        return params
    }

    /// Reads the body, refusing one over `limit` bytes without reading it all.
    public func readBody(limit: Int) throws(FastCGIBodyError) -> [UInt8] {
        let declared = param("CONTENT_LENGTH").flatMap(Int.init) ?? 0
        if declared > limit { throw .tooLarge(limit: limit) }
        var body = [UInt8]()
        body.reserveCapacity(min(max(declared, 0), limit))
        var chunk = [CChar](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBufferPointer { FCGX_GetStr($0.baseAddress, Int32($0.count), raw.pointee.in) }
            if count < 0 { throw .unreadable }
            if count == 0 { break }
            body.append(contentsOf: chunk[0..<Int(count)].map { UInt8(bitPattern: $0) })
            if body.count > limit { throw .tooLarge(limit: limit) }
        }
        return body
    }
}

public enum FastCGIBodyError: Error, Equatable {
    case tooLarge(limit: Int)
    case unreadable
}
