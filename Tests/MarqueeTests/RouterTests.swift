import FastCGI
@testable import Marquee
import Testing

@Suite("Router and query strings")
struct RouterTests {
    private func router() -> Router {
        var router = Router()
        router.get("/api/v1/users") { _ in FastCGIResponse(status: 200) }
        router.post("/api/v1/users") { _ in FastCGIResponse(status: 201) }
        router.get("/api/v1/users/{id}") { _ in FastCGIResponse(status: 200) }
        router.delete("/api/v1/users/{id}/streams/{stream}") { _ in FastCGIResponse(status: 204) }
        router.get("/movies/") { _ in FastCGIResponse(status: 200) }
        return router
    }

    @Test("exact and parameterised paths match; parameters are taken as routed (nginx decoded them once)")
    func matches() {
        guard case .found(_, let route, let parameters) = router().match(method: "DELETE", path: "/api/v1/users/a b/streams/s1") else {
            Issue.record("no match")
            return
        }
        #expect(route == "/api/v1/users/{id}/streams/{stream}")
        #expect(parameters == ["id": "a b", "stream": "s1"])
        guard case .found(_, let exact, _) = router().match(method: "HEAD", path: "/movies/") else {
            Issue.record("HEAD should be served by GET")
            return
        }
        #expect(exact == "/movies/")
    }

    @Test("a known path with another method is 405 with the allowed methods")
    func methodNotAllowed() {
        guard case .methodNotAllowed(_, let allowed) = router().match(method: "PUT", path: "/api/v1/users") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == ["GET", "POST"])
        guard case .methodNotAllowed(let route, let others) = router().match(method: "POST", path: "/api/v1/users/7") else {
            Issue.record("expected 405")
            return
        }
        #expect(route == "/api/v1/users/{id}")
        #expect(others == ["GET"])
    }

    @Test("unknown paths, a missing trailing slash and empty parameters are 404")
    func notFound() {
        for path in ["/nope", "/movies", "/api/v1/users//streams/x", "/api/v1/users%3F", "/api/v1/users?"] {
            guard case .notFound = router().match(method: "GET", path: path) else {
                Issue.record("\(path) should not match")
                continue
            }
        }
    }

    @Test("query strings decode + and %XX, keep the first of repeated names, and drop malformed escapes")
    func queryStrings() {
        let query = QueryString.decode("url=https%3A%2F%2Fcontent.viaplay.se%2Fpc-se%2Ffilm%2Farrival-2016&q=a+b&q=second&bad=%G1&=x&flag")
        #expect(query["url"] == "https://content.viaplay.se/pc-se/film/arrival-2016")
        #expect(query["q"] == "a b")
        #expect(query["bad"] == nil)
        #expect(query["flag"] == "")
        #expect(query.count == 3)
    }
}
