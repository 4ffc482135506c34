import Foundation

/// Requests sent exactly as written, from a chosen loopback address, through curl:
/// `--request-target` puts the raw path on the request line untouched (no normalising, no
/// re-encoding, unlike URLSession) and `--interface` picks the source address, so that
/// 127.0.0.2 stands for a client outside narrowed internal networks.
struct RawHTTP: Sendable {
    let port: Int

    /// One request, one connection. `rawPath` is the request target: path and query as sent.
    func send(_ method: String, _ rawPath: String, headers: [String: String] = [:], body: Data? = nil,
              from address: String = "127.0.0.1") throws -> HTTPAnswer {
        let scratch = TestPaths.temporaryDirectory("raw-http")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let headFile = scratch.appendingPathComponent("head")
        let bodyFile = scratch.appendingPathComponent("body")
        var arguments = ["-sS", "--max-time", "20", "--path-as-is", "--request-target", rawPath, "-X", method,
                         "--interface", address, "-D", headFile.path, "-o", bodyFile.path,
                         // No 100-continue round trip: the body goes with the head, as most clients send it.
                         "-H", "Expect:"]
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body {
            let sent = scratch.appendingPathComponent("sent")
            try body.write(to: sent)
            arguments += ["--data-binary", "@\(sent.path)"]
        }
        arguments.append("http://127.0.0.1:\(port)/")
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = arguments
        let errors = Pipe()
        curl.standardError = errors
        curl.standardOutput = FileHandle.nullDevice
        try curl.run()
        curl.waitUntilExit()
        let failure = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard curl.terminationStatus == 0 else {
            throw StackError("curl \(method) \(rawPath) from \(address) failed (\(curl.terminationStatus)): \(failure)")
        }
        return try Self.answer(head: Data(contentsOf: headFile), body: (try? Data(contentsOf: bodyFile)) ?? Data())
    }

    /// The last header block curl wrote (an interim 1xx comes first when there is one).
    private static func answer(head: Data, body: Data) throws -> HTTPAnswer {
        let blocks = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        guard let block = blocks.last else { throw StackError("no answer head") }
        var lines = block.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw StackError("bad status line in \(block)") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            // A repeated header is joined as HTTP allows, so that a duplicate shows.
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = headers[name].map { "\($0), \(value)" } ?? value
        }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }
}

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
            ("a letter encoded", head + "/%" + String(format: "%02X", last.utf8.first!) + last.dropFirst() + withQuery),
        ]
        return variants
    }
}
