/// What a responder answers: a status, headers and a body, written as one CGI response.
public struct FastCGIResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The CGI response head: a Status line, the headers, a Content-Length and the blank line.
    /// The body goes out after it as it is, uncopied.
    func head() -> [UInt8] {
        var head: [UInt8] = []
        head.reserveCapacity(128 + headers.count * 48)
        head.append(contentsOf: "Status: ".utf8)
        appendDecimal(status, to: &head)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: Self.reason(for: status).utf8)
        head.append(contentsOf: "\r\n".utf8)
        for header in headers {
            head.append(contentsOf: header.name.utf8)
            head.append(contentsOf: ": ".utf8)
            head.append(contentsOf: header.value.utf8)
            head.append(contentsOf: "\r\n".utf8)
        }
        head.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(body.count, to: &head)
        head.append(contentsOf: "\r\n\r\n".utf8)
        return head
    }

    private func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        guard value >= 10 else {
            bytes.append(UInt8(ascii: "0") + UInt8(max(0, value)))
            return
        }
        appendDecimal(value / 10, to: &bytes)
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    public static func reason(for status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 507: "Insufficient Storage"
        default: "Status \(status)"
        }
    }
}
