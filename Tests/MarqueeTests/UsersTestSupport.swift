import Foundation

/// Requests of the user tests: JSON bodies, with or without the admin token.
extension Stack {
    static let adminHeaders = ["Authorization": "Bearer \(Stack.adminToken)", "Content-Type": "application/json"]

    /// An admin request; `json` is serialised as the body.
    func admin(_ method: String, _ path: String, json: Any? = nil) async throws -> HTTPAnswer {
        try await client.request(method, path, headers: Stack.adminHeaders, body: json.map { try JSONSerialization.data(withJSONObject: $0) })
    }

    /// A request to the earlier service's routes, which take no token.
    func legacy(_ method: String, _ path: String, json: Any? = nil) async throws -> HTTPAnswer {
        try await client.request(method, path, headers: ["Content-Type": "application/json"],
                                 body: json.map { try JSONSerialization.data(withJSONObject: $0) })
    }

    func createUser(_ id: String, name: String = "Test User", subscription: String = "basic plan") async throws -> HTTPAnswer {
        try await admin("POST", "/api/v1/users", json: ["id": id, "name": name, "subscription": subscription])
    }

    func grant(_ user: String, _ stream: String) async throws -> HTTPAnswer {
        try await admin("POST", "/api/v1/users/\(user)/streams", json: ["stream": stream])
    }

    /// The streams a user holds now, as GET /api/v1/users/{id} lists them.
    func activeStreams(_ user: String) async throws -> [String]? {
        let answer = try await admin("GET", "/api/v1/users/\(user)")
        guard answer.status == 200, let streams = answer.json()?["streams"] as? [[String: Any]] else { return nil }
        return streams.compactMap { $0["stream"] as? String }
    }

    /// The users section of this worker's status page.
    func usersStatus() async throws -> [String: Any]? {
        let answer = try await client.get("/api/v1/status")
        return (answer.json()?["features"] as? [String: Any])?["users"] as? [String: Any]
    }
}

extension HTTPAnswer {
    /// A field of a `{"error": {…}}` body.
    func errorField(_ name: String) -> Any? {
        (json()?["error"] as? [String: Any])?[name]
    }
}

/// Runs `count` requests at once (at most `width` in flight) and returns the answers' statuses
/// in order; 0 for a request that got no answer.
func concurrently(_ count: Int, width: Int = 200, _ request: @escaping @Sendable (Int) async -> Int) async -> [Int] {
    await withTaskGroup(of: (Int, Int).self) { group in
        var statuses = [Int](repeating: 0, count: count)
        var next = 0
        while next < min(width, count) {
            let index = next
            group.addTask { (index, await request(index)) }
            next += 1
        }
        for await (index, status) in group {
            statuses[index] = status
            if next < count {
                let index = next
                group.addTask { (index, await request(index)) }
                next += 1
            }
        }
        return statuses
    }
}
