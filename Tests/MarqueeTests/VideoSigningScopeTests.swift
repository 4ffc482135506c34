import Foundation
import Testing

/// `POST /video/token` signs only what the catalogue holds for the named video, unless the
/// operator opts in to signing any source; through a real nginx and real workers.
@Suite("Video signing scope", .serialized)
struct VideoSigningScopeTests {
    static let bunny1080 = "/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4"
    static let bunny720 = "/Big_Buck_Bunny_720p_surround_FrostWire.com.mp4"

    static func legacyBody(videoId: String, sources: [String]) -> Data {
        let list = sources.map { #"{"src": "\#($0)", "size": 720, "type": "video/mp4"}"# }.joined(separator: ",")
        return Data(#"{"video": {"_id": "6213a7299fa2604f1b188ee0", "videoId": "\#(videoId)", "title": "Big Buck Bunny", "sources": [\#(list)]}}"#.utf8)
    }

    /// Tokens minted by the one worker, by scheme, summed.
    static func minted(_ stack: Stack) async throws -> Int {
        let status = try await stack.client.get("/api/v1/status")
        let videos = (status.json()?["features"] as? [String: Any])?["videos"] as? [String: Any]
        let byScheme = try #require(videos?["tokensMinted"] as? [String: Any])
        return byScheme.values.compactMap { $0 as? Int }.reduce(0, +)
    }

    /// A JSON error with `status` and `code`, carrying no signed link.
    static func expectRefused(_ answer: HTTPAnswer, _ status: Int, _ code: String, _ name: String) {
        #expect(answer.status == status, "\(name): \(answer.status) \(answer.text)")
        #expect(answer.errorCode == code, "\(name): \(answer.text)")
        #expect(answer.header("Content-Type") == "application/json", "\(name)")
        for mark in ["sig=", "md5=", "token=", "expires=", "/media/"] {
            #expect(!answer.text.contains(mark), "\(name): the refusal carries \(mark): \(answer.text)")
        }
    }

    @Test("unknown video 404, a source not catalogued for the video 403, traversal 400: each a JSON error that mints nothing",
          arguments: StorageMode.allCases)
    func refusals(_ storage: StorageMode) async throws {
        let video = try await VideoStack("video-scope", workers: 1, storage: storage) { base in
            [VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)])]
        }
        defer { video.stop() }
        let stack = video.stack
        let movie = Data("bytes nobody may sign\n".utf8)
        for name in ["premium.mp4", "Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4", "Big_Buck_Bunny_720p_surround_FrostWire.com.mp4", "sintel-720.mp4"] {
            try video.addMedia("protected", name, movie)
        }
        try await video.catalogue(try VideoFixtures.data("video-12345.json"), id: "12345")
        try await video.catalogue(Data(#"{"title": "Sintel", "sources": [{"src": "/sintel-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8), id: "sintel")
        if let postgres = stack.postgres {
            #expect(try postgres.psql("SELECT string_agg(video_id, ',' ORDER BY video_id) FROM videos") == "12345,sintel")
        }
        let before = try await Self.minted(stack)

        func post(_ body: Data) async throws -> HTTPAnswer {
            try await stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"], body: body)
        }

        // The issue's own request: no video id, no title; refused before any lookup.
        Self.expectRefused(try await post(Data(#"{"video":{"sources":[{"src":"/premium.mp4"}]}}"#.utf8)), 400, "invalid_body", "the bare oracle body")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "99999", sources: ["/premium.mp4"])), 404, "not_found", "unknown video")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "token", sources: [Self.bunny1080])), 404, "not_found", "reserved id")
        Self.expectRefused(try await post(Data(#"{"videoId": "99999"}"#.utf8)), 404, "not_found", "unknown catalogue id")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "12345", sources: ["/premium.mp4"])), 403, "source_not_catalogued", "unknown path")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "12345", sources: [Self.bunny1080, "/premium.mp4"])), 403,
                           "source_not_catalogued", "one unknown path among known ones")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "sintel", sources: [Self.bunny1080])), 403, "source_not_catalogued",
                           "a path of another video")
        Self.expectRefused(try await post(Self.legacyBody(videoId: "12345", sources: [Self.bunny1080.uppercased()])), 403, "source_not_catalogued",
                           "a path differing in case")

        let traversals = [
            "/../premium.mp4", "\(Self.bunny1080)/../premium.mp4", "/x/../premium.mp4", "/./premium.mp4", "//premium.mp4",
            "/%2e%2e/premium.mp4", "/%2E%2E/premium.mp4", "/.%2e/premium.mp4", "/%2e./premium.mp4", "/..%2fpremium.mp4",
            "/..%2Fpremium.mp4", "/%252e%252e/premium.mp4", "/%2fpremium.mp4", "/..\\\\premium.mp4", "/%5c..%5cpremium.mp4",
            "/...", "/x/..",
        ]
        for src in traversals {
            let answer = try await post(Self.legacyBody(videoId: "12345", sources: [src]))
            Self.expectRefused(answer, 400, "invalid_body", "traversal \(src)")
            let fields = ((answer.json()?["error"] as? [String: Any])?["fields"] as? [[String: Any]])?.compactMap { $0["field"] as? String }
            #expect(fields == ["video.sources[0].src"], "traversal \(src): \(answer.text)")
        }
        #expect(try await Self.minted(stack) == before, "no refused request minted a token")

        // The earlier service's body for a catalogued video still mints, in the same shape.
        let answer = try await post(try VideoFixtures.data("token-request.json"))
        #expect(answer.status == 200, "\(answer.text)")
        let json = try #require(answer.json())
        #expect(Set(json.keys) == ["_id", "videoId", "title", "sources"])
        #expect(json["_id"] as? String == "6213a7299fa2604f1b188ee0")
        #expect(json["videoId"] as? String == "12345")
        #expect(json["title"] as? String == "Big Buck Bunny")
        let sources = try #require(json["sources"] as? [[String: Any]])
        #expect(sources.map { Set($0.keys) } == [["src", "size", "type"], ["src", "size", "type"]])
        #expect(sources.map { $0["size"] as? Int } == [1080, 720])
        let urls = sources.compactMap { $0["src"] as? String }
        #expect(urls.count == 2)
        #expect(urls.first?.hasPrefix("\(video.base)/media/protected\(Self.bunny1080)?expires=") == true)
        for url in urls { #expect(try await video.fetch(url).status == 200, "\(url)") }
        #expect(try await Self.minted(stack) == before + 2)

        // A subset, in another order, signs just those: what a player asks for one rendition.
        let one = try await post(Self.legacyBody(videoId: "12345", sources: [Self.bunny720]))
        #expect(one.status == 200)
        #expect(((one.json()?["sources"] as? [[String: Any]])?.first?["src"] as? String)?.contains(Self.bunny720 + "?expires=") == true)
        #expect(try await stack.client.get("/api/v1/health").json()?["status"] as? String == "ok")
    }

    @Test("MARQUEE_VIDEO_SIGN_ANY_SOURCE=true signs a path outside the catalogue; traversal stays refused")
    func optInSignsAnySource() async throws {
        let video = try await VideoStack("video-anysource", workers: 1, environment: ["MARQUEE_VIDEO_SIGN_ANY_SOURCE": "true"]) { base in
            [VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)])]
        }
        defer { video.stop() }
        let movie = Data("opted-in bytes\n".utf8)
        try video.addMedia("protected", "premium.mp4", movie)
        let answer = try await video.stack.client.request("POST", "/video/token", body: Self.legacyBody(videoId: "anything", sources: ["/premium.mp4"]))
        #expect(answer.status == 200, "\(answer.text)")
        let url = try #require((answer.json()?["sources"] as? [[String: Any]])?.first?["src"] as? String)
        let served = try await video.fetch(url)
        #expect(served.status == 200)
        #expect(served.body == movie)
        for src in ["/../premium.mp4", "/%2e%2e/premium.mp4"] {
            Self.expectRefused(try await video.stack.client.request("POST", "/video/token", body: Self.legacyBody(videoId: "anything", sources: [src])),
                               400, "invalid_body", "traversal \(src) with the opt-in")
        }
    }

    @Test("hmac-sha256 through nginx: a link whose expires is spelled any other way than the minter's is refused",
          arguments: StorageMode.allCases)
    func canonicalExpires(_ storage: StorageMode) async throws {
        let video = try await VideoStack("video-expires", workers: 1, storage: storage) { base in
            [VideoFixtures.hmacCDN(name: "protected", address: "\(base)/media/protected", keys: [("k1", true, false)])]
        }
        defer { video.stop() }
        try video.addMedia("protected", "clip.mp4", Data("clip\n".utf8))
        let url = try #require(try await video.mint(["/clip.mp4"]).first)
        #expect(try await video.fetch(url).status == 200)
        let expires = try #require(url.components(separatedBy: "expires=").last?.prefix { $0 != "&" })
        for spelling in ["+\(expires)", "%2B\(expires)", "0\(expires)", "%20\(expires)", "\(expires)%20", "%D9%A1\(expires)",
                         "%EF%BC%91\(expires)", "1\(expires)00", "\(expires).0"] {
            let variant = url.replacingOccurrences(of: "expires=\(expires)", with: "expires=\(spelling)")
            #expect(try await video.fetch(variant).status == 403, "\(spelling)")
        }
    }
}
