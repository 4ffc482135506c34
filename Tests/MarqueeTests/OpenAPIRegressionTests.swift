import Foundation
@testable import Marquee
import Testing

/// What schemathesis found against the description, each kept as a test.
@Suite("OpenAPI regressions")
struct OpenAPIRegressionTests {
    @Test("a 405 answered by nginx itself says which methods the resource takes (Allow), as RFC 9110 requires")
    func nginxMethodNotAllowedHasAllow() async throws {
        let stack = try await Stack("openapi-allow", workers: 1)
        defer { stack.stop() }
        // nginx refuses TRACE before any location; the workers know the route's methods.
        let health = try stack.raw.send("TRACE", "/api/v1/health")
        #expect(health.status == 405)
        #expect(health.header("Allow") == "GET")
        #expect(health.errorCode == "method_not_allowed")
        let users = try stack.raw.send("TRACE", "/api/v1/users/ada")
        #expect(users.status == 405)
        #expect(users.header("Allow") == "DELETE, GET")
        // Media files take GET and HEAD: another method is 405 before the link is judged
        // (it was 403 for the missing link, and TRACE's 405 had no Allow).
        for (method, path) in [("TRACE", "/media/secure/a.mp4"), ("QUERY", "/media/secure/a.mp4"), ("POST", "/media/protected/a.mp4"),
                               ("DELETE", "/media/protected/a.mp4?expires=1&kid=k&sig=s")] {
            let answer = try stack.raw.send(method, path)
            #expect(answer.status == 405, "\(method) \(path)")
            #expect(answer.header("Allow") == "GET, HEAD", "\(method) \(path)")
            #expect(answer.errorCode == "method_not_allowed", "\(method) \(path)")
        }
        #expect(try stack.raw.send("GET", "/media/secure/a.mp4").status == 403, "GET is still judged by its link")
    }

    @Test("a source size written as a whole number with a fraction part (1080.0) is that number, as JSON Schema's integer counts it")
    func integralSizeWithFractionPart() throws {
        func size(_ json: String) -> (Int?, [String]) {
            var errors = FieldErrors()
            guard case .object(let object) = try! JSONReader.parse(Array(#"{"size": \#(json)}"#.utf8)) else { return (nil, []) }
            return (Video.parseSize(object["size"], at: "size", errors: &errors), errors.problems.map(\.problem))
        }
        #expect(size("1080.0").0 == 1080)
        #expect(size("0.0").0 == 0)
        #expect(size("1e3").0 == 1000)
        #expect(size("1080").0 == 1080)
        #expect(size("1080.5").0 == nil)
        #expect(size("-1.0").0 == nil)
        #expect(size("1e300").0 == nil)
        #expect(size("9007199254740993.0").0 == nil || size("9007199254740993.0").0! <= Video.maxSize)
    }
}
