/// The body of `POST /video/token`: the earlier service's `{"video": {…}}`, whose sources must
/// be the catalogue's for its `videoId` (unless MARQUEE_VIDEO_SIGN_ANY_SOURCE), or
/// `{"videoId": "…"}` to sign all of the catalogue's sources of that video.
enum TokenRequest {
    case video(Video, legacyId: String?)
    case catalogue(videoId: String)

    static let maxLegacyIdLength = 64

    static func parse(_ object: [String: JSONValue]) throws(HTTPError) -> TokenRequest {
        var errors = FieldErrors()
        let request = read(object, errors: &errors)
        try errors.check()
        guard let request else { throw HTTPError(.invalidBody, "the body is not a token request") }
        return request
    }

    private static func read(_ object: [String: JSONValue], errors: inout FieldErrors) -> TokenRequest? {
        if let value = object["video"] {
            guard case .object(let video) = value else {
                errors.add("video", "must be an object")
                return nil
            }
            guard !video.isEmpty else {
                errors.add("video", "must not be empty")
                return nil
            }
            // The earlier service echoed its database id; its clients may still read it.
            let legacyId = errors.string(video, "_id", path: "video._id", maxLength: maxLegacyIdLength, required: false)
            return Video.parse(video, at: "video.", idFromPath: nil, strictId: false, errors: &errors).map { .video($0, legacyId: legacyId) }
        }
        if object["videoId"] != nil {
            return errors.string(object, "videoId", maxLength: Video.maxLooseIdLength).map { .catalogue(videoId: $0) }
        }
        errors.add("video", "is required (or videoId, to sign a catalogue video)")
        return nil
    }
}
