import Hummingbird
import Logging
import NIOCore

// Usage: bench-peer --port N | --unix PATH
// Answers Marquee's `GET /api/v1/health` with the same bytes and content type, so that a
// benchmark of both measures the transport and framework, not the work.

let usage = "usage: bench-peer --port N | --unix PATH"
var address: BindAddress?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fatalError(usage) }
    switch flag {
    case "--port":
        guard let port = Int(value), (1...65535).contains(port) else { fatalError(usage) }
        address = .hostname("127.0.0.1", port: port)
    case "--unix":
        address = .unixDomainSocket(path: value)
    default:
        fatalError(usage)
    }
}
guard let address else { fatalError(usage) }

let health = ByteBuffer(string: #"{"status":"ok"}"#)
let router = Router()
router.get("/api/v1/health") { _, _ -> Response in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: health))
}

var logger = Logger(label: "bench-peer")
logger.logLevel = .warning
let app = Application(router: router, configuration: .init(address: address), logger: logger)
try await app.runService()
