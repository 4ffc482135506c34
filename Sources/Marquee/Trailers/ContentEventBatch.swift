/// The body of `POST /api/v1/content-events`, checked event by event: either one event
/// `{"type": "new-content", "url": "…"}` or `{"events": [ … ]}`. A bad event is refused on its
/// own; the valid ones of the batch are kept.
struct ContentEventBatch {
    struct Accepted {
        /// The event's position in the batch (0 for a single event).
        var index: Int
        var film: FilmURL
    }

    struct Refused {
        var index: Int
        var code: String
        var message: String

        var json: JSONValue {
            .object(["index": .int(index), "code": .string(code), "message": .string(message)])
        }
    }

    static let maxEvents = 500
    static let eventType = "new-content"

    var accepted: [Accepted] = []
    var refused: [Refused] = []

    /// Throws 400 `invalid_body` when the body is neither shape; single events are judged here.
    static func parse(_ body: [String: JSONValue], policy: FilmURLPolicy) throws(HTTPError) -> ContentEventBatch {
        let items: [JSONValue]
        if let events = body["events"] {
            guard body["url"] == nil, body["type"] == nil else {
                throw JSONBody.invalid("send one event, or {\"events\": [ … ]}, not both")
            }
            guard case .array(let list) = events, !list.isEmpty else {
                throw JSONBody.invalid("events must be a non-empty array")
            }
            guard list.count <= maxEvents else {
                throw JSONBody.invalid("at most \(maxEvents) events per request; got \(list.count)")
            }
            items = list
        } else {
            items = [.object(body)]
        }
        var batch = ContentEventBatch()
        for (index, item) in items.enumerated() {
            switch event(item, policy: policy) {
            case .success(let film): batch.accepted.append(Accepted(index: index, film: film))
            case .failure(let refusal): batch.refused.append(Refused(index: index, code: refusal.code.code, message: refusal.message))
            }
        }
        return batch
    }

    private struct Refusal: Error {
        var code: ErrorCode
        var message: String
    }

    private static func event(_ item: JSONValue, policy: FilmURLPolicy) -> Result<FilmURL, Refusal> {
        guard case .object(let event) = item else {
            return .failure(Refusal(code: .invalidEvent, message: "an event must be a JSON object"))
        }
        guard case .string(let type)? = event["type"] else {
            return .failure(Refusal(code: .invalidEvent, message: "type is required and must be \"\(eventType)\""))
        }
        guard type == eventType else {
            return .failure(Refusal(code: .unsupportedType, message: "type must be \"\(eventType)\", not \"\(type.prefix(50))\""))
        }
        guard let raw = event["url"], raw != .null else {
            return .failure(Refusal(code: .invalidURL, message: "url is required"))
        }
        guard case .string(let url) = raw else {
            return .failure(Refusal(code: .invalidURL, message: "url must be a string"))
        }
        do {
            return .success(try FilmURL.parse(url, policy: policy))
        } catch {
            return .failure(Refusal(code: .invalidURL, message: error.reason))
        }
    }
}
