import Foundation
@testable import Marquee

/// The video fixtures (copied from shared/, see Fixtures/video/PROVENANCE.md) and CDN files.
enum VideoFixtures {
    static let directory = TestPaths.repository.appendingPathComponent("Tests/MarqueeTests/Fixtures/video")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    struct LegacyVector {
        var key: String
        var src: String
        var token: String
    }

    static let legacySources = [
        "1080p": "/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4",
        "720p": "/Big_Buck_Bunny_720p_surround_FrostWire.com.mp4",
    ]

    /// The lines `KEY 1080p TOKEN | 720p TOKEN` of md5-legacy-vectors.txt.
    static func legacyVectors() throws -> [LegacyVector] {
        let text = String(decoding: try data("md5-legacy-vectors.txt"), as: UTF8.self)
        var vectors: [LegacyVector] = []
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "|" }).map(String.init)
            guard words.count == 5, let first = legacySources[words[1]], let second = legacySources[words[3]] else { continue }
            vectors.append(LegacyVector(key: words[0], src: first, token: words[2]))
            vectors.append(LegacyVector(key: words[0], src: second, token: words[4]))
        }
        return vectors
    }

    static func hmacCDN(name: String, address: String, keys: [(id: String, active: Bool, retired: Bool)], extra: String = "") -> String {
        let list = keys.map { #"{"id": "\#($0.id)", "secret": "\#(secret(for: $0.id))", "active": \#($0.active), "retired": \#($0.retired)}"# }
        return #"{"name": "\#(name)", "address": "\#(address)", "scheme": "hmac-sha256", "keys": [\#(list.joined(separator: ","))]\#(extra)}"#
    }

    /// Test secrets, derived from the key id so that a rotated file agrees with the first.
    static func secret(for keyId: String) -> String {
        keyId == "k1" ? "protected-key-one-0123456789" : "protected-key-\(keyId)-0123456789"
    }

    static func configuration(_ cdns: String..., skew: Int = 0) throws -> CDNConfiguration {
        try CDNConfiguration.parse(Data(#"{"skewSeconds": \#(skew), "cdns": [\#(cdns.joined(separator: ","))]}"#.utf8))
    }
}

/// A stack whose workers read a CDN file that names nginx's own address, and can be handed
/// a new file followed by a reload.
final class VideoStack: @unchecked Sendable {
    let stack: Stack
    let base: String
    private let cdnFile: URL
    private let configDirectory: URL

    init(_ label: String, workers: Int = 2, skew: Int = 0, environment: [String: String] = [:], storage: StorageMode = .embedded,
         cdns: (_ base: String) -> [String]) async throws {
        let port = TestPaths.freePort()
        base = "http://127.0.0.1:\(port)"
        configDirectory = TestPaths.temporaryDirectory("\(label)-cdns")
        cdnFile = configDirectory.appendingPathComponent("cdns.json")
        try Self.write(cdns(base), skew: skew, to: cdnFile)
        do {
            stack = try await Stack(label, workers: workers, environment: environment.merging(["MARQUEE_CDNS_FILE": cdnFile.path]) { _, new in new },
                                    port: port, storage: storage)
        } catch {
            try? FileManager.default.removeItem(at: configDirectory)
            throw error
        }
    }

    private static func write(_ cdns: [String], skew: Int, to file: URL) throws {
        try #"{"skewSeconds": \#(skew), "cdns": [\#(cdns.joined(separator: ",\n"))]}"#.write(to: file, atomically: true, encoding: .utf8)
    }

    /// Replaces the CDN file and waits until every running worker has logged `outcome` for it.
    func reload(skew: Int = 0, cdns: [String], outcome: String = "configuration reloaded") async throws {
        try Self.write(cdns, skew: skew, to: cdnFile)
        let running = stack.workers.filter(\.isRunning)
        let before = running.map { $0.log.components(separatedBy: outcome).count }
        for worker in running { worker.signal(SIGHUP) }
        let deadline = ContinuousClock.now + .seconds(10)
        while zip(running, before).contains(where: { $0.log.components(separatedBy: outcome).count <= $1 }) {
            guard ContinuousClock.now < deadline else { throw StackError("the workers did not reload their CDN file") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Puts `bytes` where nginx serves `/media/<location>/<name>`.
    func addMedia(_ location: String, _ name: String, _ bytes: Data) throws {
        let folder = stack.directory.appendingPathComponent("media/\(location)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try bytes.write(to: folder.appendingPathComponent(name))
    }

    /// Stores `video` (a video object) in the catalogue through the admin route.
    func catalogue(_ video: Data, id: String) async throws {
        let answer = try await stack.client.request("PUT", "/api/v1/videos/\(id)", headers: ["Authorization": "Bearer \(Stack.adminToken)"],
                                                    body: video)
        guard answer.status == 200 || answer.status == 201 else { throw StackError("storing video \(id) answered \(answer.status): \(answer.text)") }
    }

    /// Catalogues `sources` (paths) as video `clip`, signs them through `POST /video/token`
    /// and answers the signed URLs.
    func mint(_ sources: [String]) async throws -> [String] {
        let list = sources.map { #"{"src": "\#($0)", "size": 720, "type": "video/mp4"}"# }.joined(separator: ",")
        let video = #"{"videoId": "clip", "title": "A clip", "sources": [\#(list)]}"#
        try await catalogue(Data(video.utf8), id: "clip")
        let body = #"{"video": \#(video)}"#
        let answer = try await stack.client.request("POST", "/video/token", headers: ["Content-Type": "application/json"], body: Data(body.utf8))
        guard answer.status == 200, let signed = answer.json()?["sources"] as? [[String: Any]] else {
            throw StackError("minting answered \(answer.status): \(answer.text)")
        }
        return signed.compactMap { $0["src"] as? String }
    }

    /// GETs an absolute URL minted for this nginx.
    func fetch(_ url: String) async throws -> HTTPAnswer {
        guard url.hasPrefix(base) else { throw StackError("\(url) is not on \(base)") }
        return try await stack.client.get(String(url.dropFirst(base.count)))
    }

    func stop() {
        stack.stop()
        try? FileManager.default.removeItem(at: configDirectory)
    }
}

/// `url` with one character of the parameter `name`'s value changed.
func changingOneCharacter(of name: String, in url: String) -> String {
    guard let range = url.range(of: "\(name)=") else { return url }
    let index = url.index(range.upperBound, offsetBy: 3)
    let replacement: Character = url[index] == "A" ? "B" : "A"
    return url.replacingCharacters(in: index...index, with: String(replacement))
}
