import FastCGI
import Foundation

/// Test-only routes, mounted only when MARQUEE_TEST_ROUTES=1: a slow request for drain and
/// restart tests, a body echo for the body limit, and an answer of any size for the response
/// framing. Production never sets the switch.
public struct DiagnosticsFeature: Feature {
    public let name = "diagnostics"

    public static func isEnabled(_ reader: SettingsReader) throws(SettingsError) -> Bool {
        try reader.bool("MARQUEE_TEST_ROUTES", default: false)
    }

    public init() {}

    public func register(in router: inout Router) {
        router.get("/api/v1/test/sleep") { request in
            let millis = min(max(Int(request.query["ms"] ?? "") ?? 1000, 0), 30_000)
            Thread.sleep(forTimeInterval: Double(millis) / 1000)
            return .json(200, JSONValue.object(["slept": .int(millis), "pid": .int(Int(getpid()))]))
        }
        router.post("/api/v1/test/echo") { request in
            let body = try request.body()
            return .json(200, JSONValue.object(["bytes": .int(body.count)]))
        }
        router.get("/api/v1/test/bytes") { request in
            let count = min(max(Int(request.query["n"] ?? "") ?? 0, 0), 4 << 20)
            return FastCGIResponse(status: 200, headers: [(name: "Content-Type", value: "application/octet-stream")],
                                   body: (0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) })
        }
    }
}
