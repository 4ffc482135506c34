import Foundation
import Testing

/// The earlier user service's own test steps, replayed in order over HTTP through a real nginx
/// and real workers, as a client written against that service sends them: JSON text under the
/// content type `application/x-www-form-urlencoded`, camelCase paths, exact texts.
@Suite("LegacyUserService", .serialized)
struct LegacyUserServiceTests {
    static let html = "text/html; charset=utf-8"
    static let json = "application/json; charset=utf-8"

    /// A request as the earlier service's test client sent it: the body is JSON text, the
    /// content type says form-encoded.
    static func send(_ stack: Stack, _ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPAnswer {
        try await stack.client.request(method, path, headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                       body: body.map { Data($0.utf8) })
    }

    @Test("its nine steps pass in order: texts, key order, the misspelling, three concurrent grants, 400, the listing", arguments: StorageMode.allCases)
    func earlierServiceSteps(_ storage: StorageMode) async throws {
        let stack = try await Stack("legacy-users", workers: 2, storage: storage)
        defer { stack.stop() }
        // Another client's user, so that the listing of step 9 has someone in it.
        #expect(try await stack.createUser("bystander", name: "By Stander", subscription: "premium").status == 201)

        // 1. The root.
        let root = try await Self.send(stack, "GET", "/")
        #expect(root.status == 200)

        // 2. createUser, with the fields of its test body and the id the later steps use.
        let created = try await Self.send(stack, "POST", "/createUser", #"""
            {"Name":"Test User","Subscription":"basic plan","id":"010","Status":{"Online":{"Streams":{"activeStreams":0,"watching":[]}},"offline":{"lastOnline":null}}}
            """#)
        #expect(created.status == 200)
        #expect(created.header("Content-Type") == Self.html)
        #expect(created.text == "Test User created")

        // 3. getUser: exactly these keys, in this order, and no id.
        let fetched = try await Self.send(stack, "GET", "/getUser?id=010")
        #expect(fetched.status == 200)
        #expect(fetched.header("Content-Type") == Self.json)
        #expect(fetched.text == #"{"Name":"Test User","Subscription":"basic plan","Status":{"Online":{"Streams":{"activeStreams":0,"watching":[]}},"offline":{"lastOnline":null}}}"#)

        // 4. requestStream, answered in its own spelling.
        let first = try await Self.send(stack, "POST", "/requestStream", #"{"id":"010","stream":"stream_100"}"#)
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == Self.html)
        #expect(first.text == "Request for stream_100 succesful")

        // 5. Three at once for the two slots left of the limit of 3: exactly one is refused.
        let streams = ["stream_11", "stream_12", "stream_13"]
        let answers = try await withThrowingTaskGroup(of: (String, HTTPAnswer).self) { group in
            for stream in streams {
                group.addTask { (stream, try await Self.send(stack, "POST", "/requestStream", #"{"id":"010","stream":"\#(stream)"}"#)) }
            }
            var answers: [String: HTTPAnswer] = [:]
            for try await (stream, answer) in group { answers[stream] = answer }
            return answers
        }
        #expect(answers.values.allSatisfy { $0.status == 200 && $0.header("Content-Type") == Self.html })
        let refused = streams.filter { answers[$0]?.text == "User - 010 has exceeded maximum concurrent streams allowed." }
        let granted = streams.filter { answers[$0]?.text == "Request for \($0) succesful" }
        #expect(refused.count == 1, "\(answers.mapValues(\.text))")
        #expect(granted.count == 2, "\(answers.mapValues(\.text))")

        // 6. stream_11 again: its lease is renewed when it was one of the two granted; when it
        // was the one refused, the limit still holds.
        let again = try await Self.send(stack, "POST", "/requestStream", #"{"id":"010","stream":"stream_11"}"#)
        #expect(again.status == 200)
        if granted.contains("stream_11") {
            #expect(again.text == "User 010 is already watching stream_11")
        } else {
            #expect(again.text == "User - 010 has exceeded maximum concurrent streams allowed.")
        }
        let watching = try await Self.send(stack, "GET", "/getUser?id=010")
        let streamsNow = (((watching.json()?["Status"] as? [String: Any])?["Online"] as? [String: Any])?["Streams"] as? [String: Any])
        #expect(streamsNow?["activeStreams"] as? Int == 3)
        #expect(Set(streamsNow?["watching"] as? [String] ?? []) == Set(["stream_100"] + granted))

        // 7. removeUser.
        let removed = try await Self.send(stack, "POST", "/removeUser", #"{"id":"010"}"#)
        #expect(removed.status == 200)
        #expect(removed.header("Content-Type") == Self.html)
        #expect(removed.text == "user 010 successfully deleted")

        // 8. getUser with an empty id: 400 "Bad Request".
        let empty = try await Self.send(stack, "GET", "/getUser?id=")
        #expect(empty.status == 400)
        #expect(empty.header("Content-Type") == Self.html)
        #expect(empty.text == "Bad Request")

        // 9. getallusers: `Users` keyed by id, each in the shape of step 3.
        let all = try await Self.send(stack, "GET", "/getallusers")
        #expect(all.status == 200)
        #expect(all.header("Content-Type") == Self.json)
        #expect(all.text == #"{"Users":{"bystander":{"Name":"By Stander","Subscription":"premium","Status":{"Online":{"Streams":{"activeStreams":0,"watching":[]}},"offline":{"lastOnline":null}}}}}"#)
    }

    @Test("any letter case reaches the routes; refusals are its 400 Bad Request; the modern 409 stays on /api/v1", arguments: StorageMode.allCases)
    func casesAndRefusals(_ storage: StorageMode) async throws {
        let stack = try await Stack("legacy-users-cases", workers: 2, environment: ["MARQUEE_STREAM_LIMIT": "1"], storage: storage)
        defer { stack.stop() }

        let spellings = ["/createuser", "/CREATEUSER", "/CreateUser", "/cReAtEuSeR"]
        for (index, path) in spellings.enumerated() {
            let answer = try await Self.send(stack, "POST", path, #"{"Name":"User \#(index)","Subscription":"basic","id":"u\#(index)"}"#)
            #expect(answer.status == 200, "\(path)")
            #expect(answer.text == "User \(index) created", "\(path)")
        }
        for path in ["/getuser?id=u0", "/GETUSER?id=u1", "/GetUser?id=u2"] {
            #expect(try await Self.send(stack, "GET", path).json()?["Name"] as? String != nil, "\(path)")
        }
        #expect(try await Self.send(stack, "GET", "/GETALLUSERS").json()?["Users"] as? [String: Any] != nil)
        #expect(try await Self.send(stack, "POST", "/REQUESTSTREAM", #"{"id":"u0","stream":"s1"}"#).text == "Request for s1 succesful")
        // A stream's case does not make it another stream, as the earlier service lowercased them.
        #expect(try await Self.send(stack, "POST", "/requeststream", #"{"id":"u0","stream":"S1"}"#).text == "User u0 is already watching S1")

        // Refusals: unknown users, missing or invalid fields, broken JSON, a taken id.
        let refusals: [(String, String, String?)] = [
            ("GET", "/getuser?id=nobody", nil),
            ("GET", "/getuser", nil),
            ("GET", "/getuser?id=..", nil),
            ("POST", "/requeststream", #"{"id":"nobody","stream":"s1"}"#),
            ("POST", "/requeststream", #"{"id":"u0"}"#),
            ("POST", "/removeuser", #"{"id":"nobody"}"#),
            ("POST", "/removeuser", "id=u0"),
            ("POST", "/createuser", #"{"Name":"No Plan"}"#),
            ("POST", "/createuser", #"{"Name":"Again","Subscription":"basic","id":"u0"}"#),
            ("GET", "/getallusers?limit=0", nil),
        ]
        for (method, path, body) in refusals {
            let answer = try await Self.send(stack, method, path, body)
            #expect(answer.status == 400, "\(method) \(path) \(body ?? "")")
            #expect(answer.header("Content-Type") == Self.html, "\(method) \(path)")
            #expect(answer.text == "Bad Request", "\(method) \(path)")
        }
        #expect(try await Self.send(stack, "GET", "/getuser?id=u0").json()?["Name"] as? String == "User 0", "a taken id is never overwritten")

        // Over the limit, the drop-in route says so with a 200; the modern route keeps its 409.
        #expect(try await Self.send(stack, "POST", "/requeststream", #"{"id":"u0","stream":"s2"}"#).text
            == "User - u0 has exceeded maximum concurrent streams allowed.")
        let modern = try await stack.grant("u0", "s2")
        #expect(modern.status == 409)
        #expect(modern.errorCode == "stream_limit_reached")
    }
}
