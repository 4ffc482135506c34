import CFastCGI

/// One request as nginx passed it. Valid only while the responder runs: libfcgi frees the
/// params and streams when the request finishes, so everything kept is copied out.
public struct FastCGIRequest {
    let raw: UnsafeMutablePointer<FCGX_Request>
    /// Lets another thread answer this request first, when the responder takes too long.
    public let exchange: FastCGIExchange

    init(raw: UnsafeMutablePointer<FCGX_Request>, exchange: FastCGIExchange) {
        self.raw = raw
        self.exchange = exchange
    }

    /// A FastCGI param (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH,
    /// REMOTE_ADDR, HTTP_*, …), copied out.
    public func param(_ name: String) -> String? {
        guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
        return String(cString: value)
    }

    /// An HTTP request header by its HTTP name, as nginx passes it (`User-Agent` → HTTP_USER_AGENT).
    public func header(_ name: String) -> String? {
        var paramName: [CChar] = Array("HTTP_".utf8CString.dropLast())
        paramName.reserveCapacity(6 + name.utf8.count)
        for byte in name.utf8 {
            let mapped = byte == UInt8(ascii: "-") ? UInt8(ascii: "_")
                : (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
            paramName.append(CChar(bitPattern: mapped))
        }
        paramName.append(0)
        guard let value = FCGX_GetParam(paramName, raw.pointee.envp) else { return nil }
        return String(cString: value)
    }

    public var method: String { param("REQUEST_METHOD") ?? "GET" }

    /// DOCUMENT_URI whole: nginx's `$uri`, decoded once and normalised (`//`, `/./`, `/../`
    /// resolved), the very path nginx matched its locations against, so that nginx and the
    /// router never disagree on a spelling. Being decoded, a `?` in it is part of the path (it
    /// was `%3F`), never the start of a query. Without DOCUMENT_URI nothing is routable.
    public var path: String { param("DOCUMENT_URI") ?? "" }

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
        // Read straight into the body's own storage; one byte past the limit tells an
        // undeclared oversize body from one exactly at it.
        var body = [UInt8](repeating: 0, count: min(max(declared, 0), limit) + 1)
        var filled = 0
        while true {
            if filled == body.count {
                if filled > limit { throw .tooLarge(limit: limit) }
                body.append(contentsOf: repeatElement(0, count: min(max(body.count, 16_384), limit + 1 - filled)))
            }
            let count = body.withUnsafeMutableBytes { buffer in
                FCGX_GetStr(buffer.baseAddress!.advanced(by: filled).assumingMemoryBound(to: CChar.self), Int32(buffer.count - filled),
                            raw.pointee.in)
            }
            if count < 0 { throw .unreadable }
            if count == 0 { break }
            filled += Int(count)
        }
        if filled > limit { throw .tooLarge(limit: limit) }
        body.removeLast(body.count - filled)
        return body
    }
}

public enum FastCGIBodyError: Error, Equatable {
    case tooLarge(limit: Int)
    case unreadable
}
