import FastCGI
@testable import Marquee
import Testing

extension RouterTests {
    @Test("case-insensitive routes match any ASCII letter case, only after exact routes, and fold nothing else")
    func caseInsensitive() {
        var router = Router()
        router.addCaseInsensitive("GET", "/getuser") { _ in FastCGIResponse(status: 200) }
        router.addCaseInsensitive("POST", "/createUser") { _ in FastCGIResponse(status: 200) }
        router.get("/GetUser") { _ in FastCGIResponse(status: 204) }
        router.addCaseInsensitive("GET", "/track") { _ in FastCGIResponse(status: 200) }
        #expect({ if case .found = router.match(method: "GET", path: "/TRACK") { true } else { false } }())

        for path in ["/getuser", "/GETUSER", "/gEtUsEr"] {
            guard case .found(_, let route, _) = router.match(method: "GET", path: path) else {
                Issue.record("\(path) should match")
                continue
            }
            #expect(route == "/getuser")
        }
        guard case .found(_, let exact, _) = router.match(method: "GET", path: "/GetUser") else {
            Issue.record("the exact route should match")
            return
        }
        #expect(exact == "/GetUser")
        #expect({ if case .found = router.match(method: "POST", path: "/CREATEUSER") { true } else { false } }())
        guard case .methodNotAllowed(let route, let allowed) = router.match(method: "GET", path: "/createuser") else {
            Issue.record("expected 405")
            return
        }
        #expect(route == "/createUser")
        #expect(allowed == ["POST"])
        // Unicode lowercasing would fold the Kelvin sign to `k`; only ASCII letters fold here.
        for path in ["/getuser/", "/getuser%3F", "/getuſer", "/get\u{0130}user", "/trac\u{212A}", "/TRAC\u{212A}"] {
            guard case .notFound = router.match(method: "GET", path: path) else {
                Issue.record("\(path) should not match")
                continue
            }
        }
    }
}
