import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What a test sees of an answer from nginx.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    func json() -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
    }

    /// The `code` of a `{"error":{"code":…}}` body.
    var errorCode: String? {
        (json()?["error"] as? [String: Any])?["code"] as? String
    }

    func header(_ name: String) -> String? {
        headers.first { $0.key.lowercased() == name.lowercased() }?.value
    }

    /// Every answer a suite receives is held to openapi/marquee.yaml: a JSON answer that drifts
    /// from its route's schema for that status fails the test that received it.
    func checkAgainstDescription(method: String, target: String) {
        if let problem = OpenAPIDescription.shared.conformanceProblem(method: method, target: target, status: status,
                                                                      contentType: header("Content-Type"), body: body) {
            Issue.record(Comment(rawValue: "OpenAPI: " + problem))
        }
    }
}

/// Plain HTTP/1.1 requests to a loopback nginx, one connection each, as a browser or player would.
struct HTTPClient: Sendable {
    let base: String

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 256
        configuration.timeoutIntervalForRequest = 30
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        return URLSession(configuration: configuration)
    }()

    func request(_ method: String = "GET", _ path: String, headers: [String: String] = [:], body: Data? = nil,
                 timeout: TimeInterval = 30) async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let (data, response) = try await Self.session.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            fields["\(name)"] = "\(value)"
        }
        let answer = HTTPAnswer(status: http.statusCode, headers: fields, body: data)
        answer.checkAgainstDescription(method: method, target: path)
        return answer
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> HTTPAnswer {
        try await request("GET", path, headers: headers)
    }

    /// The status, or 0 when the connection failed.
    func status(_ path: String) async -> Int {
        (try? await get(path).status) ?? 0
    }
}
