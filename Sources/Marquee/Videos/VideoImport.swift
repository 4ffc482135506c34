import Foundation

/// `marquee videos import`: the videos of a JSON file, every one checked before any is stored.
public enum VideoImport {
    public struct Problems: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a JSON list of videos (or one video) and checks every one of them, reporting all
    /// problems, before anything is stored.
    public static func parse(_ data: Data) throws(Problems) -> [Video] {
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
            throw Problems(description: "the file is not valid JSON")
        default:
            throw Problems(description: "expected a JSON list of videos, or one video object")
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
            throw Problems(description: "\(errors.problems.count) problem(s), nothing imported:\n" + lines.joined(separator: "\n") + more)
        }
        return videos
    }
}
