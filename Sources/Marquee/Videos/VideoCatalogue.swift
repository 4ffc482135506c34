import Foundation
import LMDBStore

/// The videos the service knows, each stored as the JSON that `GET /video/{videoId}` answers.
public struct VideoCatalogue: Sendable {
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// The stored answer for `videoId`, ready to send. One stored before videos had an `_id`
    /// is answered with its generated one.
    func json(of videoId: String) throws -> [UInt8]? {
        guard let bytes = try store.get(VideoKeys.catalogue(videoId)) else { return nil }
        guard !bytes.starts(with: Self.legacyIdPrefix), var video = Self.decode(bytes) else { return bytes }
        video.legacyId = Video.generatedLegacyId(for: video.videoId)
        return video.json()
    }

    private static let legacyIdPrefix = Array(#"{"_id":"#.utf8)

    private static func decode(_ bytes: [UInt8]) -> Video? {
        guard case .object(let object)? = try? JSONReader.parse(bytes) else { return nil }
        var errors = FieldErrors()
        return Video.parse(object, at: "", idFromPath: nil, errors: &errors)
    }

    public func video(_ videoId: String) throws -> Video? {
        try json(of: videoId).flatMap(Self.decode)
    }

    /// Creates or replaces every video in one synced write; answers how many were new. A
    /// video given without an `_id` keeps the one it is stored with, or gets its generated one.
    @discardableResult
    public func save(_ videos: [Video]) throws -> Int {
        try store.write(.state, durable: true) { txn in
            var created = 0
            for var video in videos {
                let key = VideoKeys.catalogue(video.videoId)
                let stored = try txn.get(key)
                if stored == nil { created += 1 }
                if video.legacyId == nil {
                    video.legacyId = stored.flatMap(Self.decode)?.legacyId ?? Video.generatedLegacyId(for: video.videoId)
                }
                try txn.put(key, video.json())
            }
            return created
        }
    }

    public struct ImportError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a JSON list of videos (or one video) and checks every one of them, reporting all
    /// problems, before anything is stored.
    public static func parseImport(_ data: Data) throws(ImportError) -> [Video] {
        let objects: [JSONValue]
        let single: Bool
        switch try? JSONReader.parse(Array(data)) {
        case .array(let list)?:
            objects = list
            single = false
        case .object(let object)?:
            objects = [.object(object)]
            single = true
        case nil:
            throw ImportError(description: "the file is not valid JSON")
        default:
            throw ImportError(description: "expected a JSON list of videos, or one video object")
        }
        var errors = FieldErrors()
        var videos: [Video] = []
        var seen: Set<String> = []
        for (index, element) in objects.enumerated() {
            let at = single ? "" : "[\(index)]."
            guard case .object(let object) = element else {
                errors.add("[\(index)]", "must be a video object")
                continue
            }
            guard let video = Video.parse(object, at: at, idFromPath: nil, errors: &errors) else { continue }
            if !seen.insert(video.videoId).inserted {
                errors.add("\(at)videoId", "'\(video.videoId)' appears twice in the file")
            }
            videos.append(video)
        }
        guard errors.isEmpty else {
            let lines = errors.problems.prefix(20).map { "  \($0.field): \($0.problem)" }
            let more = errors.problems.count > 20 ? "\n  … and \(errors.problems.count - 20) more" : ""
            throw ImportError(description: "\(errors.problems.count) problem(s), nothing imported:\n" + lines.joined(separator: "\n") + more)
        }
        return videos
    }
}
