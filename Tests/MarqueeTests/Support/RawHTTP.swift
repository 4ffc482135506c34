import Foundation

/// HTTP/1.1 over a plain socket, one connection per request, sent exactly as written: the path
/// keeps its `%3F`, `/./` and doubled slashes, headers may be malformed or repeated, and the
/// connection can come from another loopback address (127.0.0.2) to play a client outside the
/// internal networks. URLSession normalises all of these away, so it cannot send them.
struct RawHTTP: Sendable {
    let port: Int

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One request; `rawPath` is the request target, path and query, as it goes on the wire.
    func send(_ method: String, _ rawPath: String, headers: [String: String] = [:], body: Data? = nil,
              from address: String = "127.0.0.1") throws -> HTTPAnswer {
        try send(method, rawPath, headerList: headers.map { ($0.key, $0.value) }, body: body, from: address)
    }

    /// As `send`, with headers in the order given, repeats included; a body gets a
    /// Content-Length unless `headerList` already frames it.
    func send(_ method: String, _ target: String, headerList headers: [(String, String)], body: Data? = nil,
              from address: String = "127.0.0.1", timeout: Int = 30) throws -> HTTPAnswer {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let framed = headers.contains { ["content-length", "transfer-encoding"].contains($0.0.lowercased()) }
        if let body, !framed { head += "Content-Length: \(body.count)\r\n" }
        var request = Data(head.utf8)
        request.append(contentsOf: "\r\n".utf8)
        if let body { request.append(body) }
        let answer = try parseAnswer(exchange(request, from: address, timeout: timeout))
        answer.checkAgainstDescription(method: method, target: target)
        return answer
    }

    /// Writes `bytes` as they are, for what no well-formed request can carry, and reads the answer.
    func exchange(_ bytes: Data, from address: String = "127.0.0.1") throws -> HTTPAnswer {
        try parseAnswer(exchange(bytes, from: address, timeout: 30))
    }

    private func exchange(_ bytes: Data, from sourceAddress: String, timeout: Int) throws -> Data {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var source = Self.address(sourceAddress, port: 0)
        var server = Self.address("127.0.0.1", port: port)
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard withUnsafePointer(to: &source, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }) == 0 else {
            throw Failure(description: "bind \(sourceAddress): errno \(errno)")
        }
        guard withUnsafePointer(to: &server, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } }) == 0 else {
            throw Failure(description: "connect 127.0.0.1:\(port): errno \(errno)")
        }
        try bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let written = Foundation.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                // The server may answer and close before reading a body it refuses.
                if written < 0 && (errno == EPIPE || errno == ECONNRESET) { return }
                guard written > 0 else { throw Failure(description: "send: errno \(errno)") }
                sent += written
            }
        }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 || (count < 0 && errno == ECONNRESET && !answer.isEmpty) { break }
            guard count > 0 else { throw Failure(description: "recv: errno \(errno) after \(answer.count) bytes") }
            answer.append(contentsOf: buffer[0..<count])
        }
        return answer
    }

    private static func address(_ text: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(text)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }

    private func parseAnswer(_ raw: Data) throws -> HTTPAnswer {
        guard let split = raw.firstRange(of: Data("\r\n\r\n".utf8)) else {
            throw Failure(description: "no header end in \(raw.count) bytes: \(String(decoding: raw.prefix(200), as: UTF8.self))")
        }
        let lines = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw Failure(description: "bad status line \(lines[0])")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            // A repeated header is joined as HTTP allows, so that a duplicate shows.
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { "\($0), \(value)" } ?? value
        }
        var body = Data(raw[split.upperBound...])
        if headers.first(where: { $0.key.lowercased() == "transfer-encoding" })?.value.lowercased() == "chunked" {
            body = try Self.dechunk(body)
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ data: Data) throws -> Data {
        var output = Data()
        var rest = data[...]
        while let lineEnd = rest.firstRange(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw Failure(description: "bad chunk size \(sizeText)")
            }
            if size == 0 { return output }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size + 2 else { throw Failure(description: "short chunk") }
            output.append(rest[start..<rest.index(start, offsetBy: size)])
            rest = rest[rest.index(start, offsetBy: size + 2)...]
        }
        throw Failure(description: "no last chunk")
    }
}
