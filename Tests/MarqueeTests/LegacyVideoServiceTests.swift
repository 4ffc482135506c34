import Foundation
import LMDBStore
import Testing
@testable import Marquee

/// The earlier video service's own end-to-end tests (find-video, then get-token), replayed in
/// order over HTTP through a real nginx and real workers, against its catalogue and its CDN
/// scheme (md5-legacy, `?token=`).
@Suite("LegacyVideoService", .serialized)
struct LegacyVideoServiceTests {
    static var sources: [[String: Any]] { [
        ["src": "/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4", "size": 1080, "type": "video/mp4"],
        ["src": "/Big_Buck_Bunny_720p_surround_FrostWire.com.mp4", "size": 720, "type": "video/mp4"],
    ] }

    /// The video of its get-token test, with a fresh MongoDB-style `_id` as it sends one.
    static var tokenVideo: [String: Any] { [
        "_id": "65a1f0c2b4d3e8a9f0123456", "videoId": "12345getToken", "title": "Big Buck Bunny", "sources": sources,
    ] }

    static func isHex24(_ value: Any?) -> Bool {
        guard let text = value as? String else { return false }
        return text.utf8.count == 24 && text.allSatisfy(\.isHexDigit)
    }

    /// A stack whose one CDN signs as the earlier service did, with the catalogue its tests
    /// read: video 12345 with its database `_id`, and the get-token test's video without one.
    static func start(_ label: String, storage: StorageMode = .embedded) async throws -> VideoStack {
        let video = try await VideoStack(label, storage: storage) { base in
            [#"{"name": "legacy", "address": "\#(base)", "scheme": "md5-legacy", "keys": [{"id": "legacy-0", "secret": "0000"}]}"#]
        }
        do {
            // Video 12345 as the earlier service's database held it, `_id` included: the record
            // its token request echoes.
            let record = try JSONSerialization.jsonObject(with: VideoFixtures.data("token-request.json")) as? [String: Any]
            let fixture = try #require(record?["video"])
            var catalogued = tokenVideo
            catalogued["_id"] = nil
            let file = video.stack.directory.appendingPathComponent("catalogue.json")
            try JSONSerialization.data(withJSONObject: [fixture, catalogued]).write(to: file)
            var environment = ["MARQUEE_STORE_DIR": video.stack.directory.appendingPathComponent("store").path, "MARQUEE_STORE_MAX_MB": "256"]
            if let postgres = video.stack.postgres { environment["MARQUEE_DATABASE_URL"] = postgres.url }
            let importer = try ChildProcess("import", executable: TestPaths.marquee, arguments: ["videos", "import", file.path],
                                            environment: environment, logDirectory: video.stack.directory)
            guard importer.waitForExit(timeout: .seconds(20)) == 0 else { throw StackError("videos import failed: \(importer.log)") }
        } catch {
            video.stop()
            throw error
        }
        return video
    }

    static func token(_ stack: Stack, _ body: Any) async throws -> HTTPAnswer {
        try await stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"],
                                       body: try JSONSerialization.data(withJSONObject: body))
    }

    @Test("find-video then get-token: 404, the video with its _id, 400 on a malformed body, 200 with _id and ?token= sources")
    func earlierServiceSteps() async throws {
        let video = try await Self.start("legacy-video")
        defer { video.stop() }
        let stack = video.stack

        // find-video: "should return 404 when video does not exist".
        #expect(try await stack.client.get("/video/nonExistentVideoId").status == 404)

        // find-video: "should return a video", `_id` any string.
        let found = try await stack.client.get("/video/12345")
        #expect(found.status == 200)
        let body = try #require(found.json())
        #expect(body["_id"] as? String == "6213a7299fa2604f1b188ee0", "the catalogue's own _id is kept")
        #expect(body["videoId"] as? String == "12345")
        #expect(body["title"] as? String == "Big Buck Bunny")
        let sources = try #require(body["sources"] as? [[String: Any]])
        #expect(sources.count == 2)
        #expect(sources.map(NSDictionary.init(dictionary:)) == Self.sources.map(NSDictionary.init(dictionary:)))

        // get-token: "should return 400 when video payload is malformed: invalid sources".
        var malformed = Self.tokenVideo
        malformed["sources"] = nil
        #expect(try await Self.token(stack, ["video": malformed]).status == 400)

        // get-token: "should return 200 and same video structure".
        let minted = try await Self.token(stack, ["video": Self.tokenVideo])
        #expect(minted.status == 200, "\(minted.text)")
        let structure = try #require(minted.json())
        #expect(structure["_id"] is String)
        #expect(structure["videoId"] is String)
        #expect(structure["title"] is String)
        let signed = try #require(structure["sources"] as? [[String: Any]])
        #expect(!signed.isEmpty && signed.allSatisfy { $0["src"] is String && $0["size"] is Int && $0["type"] is String })

        // get-token: "should return 200 and sources with token in the url".
        let again = try await Self.token(stack, ["video": Self.tokenVideo])
        #expect(again.status == 200)
        let urls = try #require((again.json()?["sources"] as? [[String: Any]])?.compactMap { $0["src"] as? String })
        #expect(urls.count == 2)
        for (url, source) in zip(urls, Self.sources) {
            let components = try #require(URLComponents(string: url))
            #expect(components.path == source["src"] as? String)
            #expect(components.queryItems?.first { $0.name == "token" }?.value?.isEmpty == false, "\(url)")
        }
    }

    @Test("a video put without an _id gets a stable 24-hex one, kept on replacement; a given _id is kept", arguments: StorageMode.allCases)
    func generatedIds(_ storage: StorageMode) async throws {
        let video = try await Self.start("legacy-video-ids", storage: storage)
        defer { video.stop() }
        let stack = video.stack
        let admin = ["Authorization": "Bearer \(Stack.adminToken)", "Content-Type": "application/json"]
        let body = Data(#"{"title": "Sintel", "sources": [{"src": "/sintel-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)

        let created = try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: admin, body: body)
        #expect(created.status == 201)
        let generated = created.json()?["_id"] as? String
        #expect(Self.isHex24(generated), "\(created.text)")
        // Every worker answers the same id, read after read.
        for _ in 0..<4 {
            #expect(try await stack.client.get("/video/sintel").json()?["_id"] as? String == generated)
        }
        let replaced = try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: admin, body: body)
        #expect(replaced.status == 200)
        #expect(replaced.json()?["_id"] as? String == generated, "a replacement without an _id keeps the stored one")

        // The get-token video was imported without one: it has its generated id too.
        let imported = try await stack.client.get("/video/12345getToken").json()?["_id"]
        #expect(Self.isHex24(imported))
        #expect(imported as? String != generated)

        let given = Data(#"{"_id": "5f1e2d3c4b5a697887766554", "title": "Sintel", "sources": [{"src": "/sintel-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
        #expect(try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: admin, body: given).json()?["_id"] as? String
            == "5f1e2d3c4b5a697887766554")
        #expect(try await stack.client.get("/video/sintel").json()?["_id"] as? String == "5f1e2d3c4b5a697887766554")
        #expect(try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: admin, body: body).json()?["_id"] as? String
            == "5f1e2d3c4b5a697887766554", "a replacement without an _id keeps the one given before")

        let wrongType = Data(#"{"_id": 7, "title": "Sintel", "sources": [{"src": "/sintel-720.mp4", "size": 720, "type": "video/mp4"}]}"#.utf8)
        let refused = try await stack.client.request("PUT", "/api/v1/videos/sintel", headers: admin, body: wrongType)
        #expect(refused.status == 400)
        #expect(refused.errorCode == "invalid_body")
    }

    @Test("a video stored before videos had an _id is answered with its generated one, which a later save keeps")
    func storedWithoutId() throws {
        let directory = TestPaths.temporaryDirectory("legacy-video-upgrade")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 16 << 20))
        let catalogue = LMDBVideoCatalogue(store: store)
        let earlier = #"{"sources":[{"size":720,"src":"/a.mp4","type":"video/mp4"}],"title":"Old","videoId":"old"}"#
        try store.put(VideoKeys.catalogue("old"), Array(earlier.utf8), as: .state, durable: true)

        let generated = Video.generatedLegacyId(for: "old")
        #expect(Self.isHex24(generated))
        let answered = try #require(try catalogue.json(of: "old"))
        #expect(String(decoding: answered, as: UTF8.self) == #"{"_id":"\#(generated)","# + earlier.dropFirst())
        #expect(try catalogue.video("old")?.legacyId == generated)

        var replacement = try #require(try catalogue.video("old"))
        replacement.legacyId = nil
        replacement.title = "Renamed"
        #expect(try catalogue.save([replacement]) == 0)
        #expect(try catalogue.video("old")?.legacyId == generated)
        #expect(try catalogue.video("old")?.title == "Renamed")
    }
}
