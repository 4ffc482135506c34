import Foundation

/// The smallest FastCGI client: one responder request per connection, written straight to a
/// worker's socket with params of the test's choosing (as nginx would, or as nginx never would).
enum FastCGIClient {
    static func send(socket path: String, params: [(String, String)], body: [UInt8] = [], timeout: Duration = .seconds(20)) throws -> HTTPAnswer {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StackError("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: Array(path.utf8.prefix(buffer.count - 1)) + [0])
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw StackError("connect \(path): \(errno)") }
        var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))

        var request = record(type: 1, content: [0, 1, 0, 0, 0, 0, 0, 0]) // BEGIN_REQUEST: responder, close after
        var encoded: [UInt8] = []
        for (name, value) in params { encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8) }
        request += chunked(type: 4, encoded) // PARAMS
        request += chunked(type: 5, body) // STDIN
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw StackError("write: \(errno)") }
            sent += count
        }

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else { throw StackError("read: \(errno) after \(received.count) bytes") }
            received += buffer[..<count]
        }
        return try answer(received)
    }

    /// A request that asks the worker to keep the connection (FCGI_KEEP_CONN), as nginx sends.
    static func keptRequest(params: [(String, String)]) -> [UInt8] {
        var encoded: [UInt8] = []
        for (name, value) in params { encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8) }
        return record(type: 1, content: [0, 1, 1, 0, 0, 0, 0, 0]) + chunked(type: 4, encoded) + chunked(type: 5, [])
    }

    /// Reads one answer from a kept connection, up to and with its END_REQUEST record; nil
    /// when the connection ends or fails first.
    static func readKeptAnswer(_ fd: Int32) -> HTTPAnswer? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            var offset = 0
            while offset + 8 <= received.count {
                let length = Int(received[offset + 4]) << 8 | Int(received[offset + 5])
                let end = offset + 8 + length + Int(received[offset + 6])
                guard end <= received.count else { break }
                if received[offset + 1] == 3 { return try? answer(Array(received[..<end])) }
                offset = end
            }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            received += buffer[..<count]
        }
    }

    /// Records of at most 65,535 bytes, then the empty record that ends the stream.
    private static func chunked(type: UInt8, _ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 65_535, bytes.count)
            out += record(type: type, content: Array(bytes[offset..<end]))
            offset = end
        }
        return out + record(type: type, content: [])
    }

    private static func record(type: UInt8, content: [UInt8]) -> [UInt8] {
        let padding = (8 - content.count % 8) % 8
        return [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(padding), 0]
            + content + [UInt8](repeating: 0, count: padding)
    }

    private static func length(_ count: Int) -> [UInt8] {
        count < 128 ? [UInt8(count)]
            : [UInt8(count >> 24 & 0x7f) | 0x80, UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
    }

    /// STDOUT records joined, split into the CGI head (`Status:` and headers) and the body.
    private static func answer(_ bytes: [UInt8]) throws -> HTTPAnswer {
        var stdout: [UInt8] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            let start = offset + 8
            guard start + length + padding <= bytes.count else { throw StackError("truncated record") }
            if type == 6 { stdout += bytes[start..<start + length] }
            offset = start + length + padding
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let split = (0...(max(0, stdout.count - 4))).first(where: { Array(stdout[$0..<min($0 + 4, stdout.count)]) == separator }) else {
            throw StackError("no CGI head in \(String(decoding: stdout, as: UTF8.self))")
        }
        var status = 200
        var headers: [String: String] = [:]
        for line in String(decoding: stdout[..<split], as: UTF8.self).components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name.lowercased() == "status" {
                status = Int(value.prefix { $0.isNumber }) ?? 0
            } else {
                headers[name] = value
            }
        }
        return HTTPAnswer(status: status, headers: headers, body: Data(stdout[(split + 4)...]))
    }
}
