import Foundation

/// The videos the service knows, each stored as the JSON that `GET /video/{videoId}` answers:
/// in the embedded store (`LMDBVideoCatalogue`, the default) or in PostgreSQL
/// (`PostgresVideoCatalogue`, with MARQUEE_DATABASE_URL), where every host sees the same one.
public protocol VideoCatalogue: Sendable {
    /// The answer as it was stored, nil for a video the catalogue does not hold.
    func stored(_ videoId: String) throws -> [UInt8]?
    /// Creates or replaces every video in one durable transaction; answers how many were new.
    /// A video given without an `_id` keeps the one it is stored with, or gets its generated one.
    @discardableResult
    func save(_ videos: [Video]) throws -> Int
}

extension VideoCatalogue {
    /// The stored answer for `videoId`, ready to send. One stored before videos had an `_id`
    /// is answered with its generated one.
    func json(of videoId: String) throws -> [UInt8]? {
        guard let bytes = try stored(videoId) else { return nil }
        guard !bytes.starts(with: legacyIdPrefix), var video = Self.decode(bytes) else { return bytes }
        video.legacyId = Video.generatedLegacyId(for: video.videoId)
        return video.json()
    }

    private var legacyIdPrefix: [UInt8] { Array(#"{"_id":"#.utf8) }

    static func decode(_ bytes: [UInt8]) -> Video? {
        guard case .object(let object)? = try? JSONReader.parse(bytes) else { return nil }
        var errors = FieldErrors()
        return Video.parse(object, at: "", idFromPath: nil, errors: &errors)
    }

    public func video(_ videoId: String) throws -> Video? {
        try json(of: videoId).flatMap(Self.decode)
    }

    /// The `_id` to store `video` with when it came without one: the one `stored` has, else
    /// the generated one.
    static func legacyId(keeping stored: [UInt8]?, for video: Video) -> String {
        stored.flatMap(decode)?.legacyId ?? Video.generatedLegacyId(for: video.videoId)
    }
}
