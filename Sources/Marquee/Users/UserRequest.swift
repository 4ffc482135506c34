/// What the user routes read from a request, checked: the JSON body (16 KiB at most: every
/// body here is a few short strings), a stream field and the paging query.
enum UserRequest {
    static let maxBodyBytes = 16 * 1024

    static func object(_ request: Request) throws(HTTPError) -> [String: JSONValue] {
        let tooLarge = HTTPError(.bodyTooLarge, "the body is over the limit of \(maxBodyBytes) bytes for user routes")
        if let declared = request.param("CONTENT_LENGTH").flatMap(Int.init), declared > maxBodyBytes { throw tooLarge }
        let bytes = try request.body()
        guard bytes.count <= maxBodyBytes else { throw tooLarge }
        return try JSONReader.object(bytes)
    }

    /// An id-like field (`id`, `stream`): a string that is a valid `Identifier`.
    static func identifier(_ object: [String: JSONValue], _ field: String, required: Bool = true, into errors: inout FieldErrors) -> String? {
        guard let text = errors.string(object, field, maxLength: Identifier.maxLength, required: required) else { return nil }
        if let problem = Identifier.problem(text) {
            errors.add(field, problem)
            return nil
        }
        return text
    }

    struct Page {
        var limit: Int
        var cursor: Int64?
    }

    /// `limit` (1…`maxLimit`, default `defaultLimit`) and `cursor` (the `nextCursor` of the
    /// page before).
    static func page(_ request: Request, defaultLimit: Int, maxLimit: Int) throws(HTTPError) -> Page {
        let query = request.query
        // The query decoder drops a pair it cannot decode; a page must not silently restart.
        let sentNames = request.fastCGI.queryString.split(separator: "&").map { $0.prefix { $0 != "=" } }
        for name in ["limit", "cursor"] where query[name] == nil && sentNames.contains(Substring(name)) {
            throw HTTPError(.invalidQuery, "\(name) is not valid percent-encoded UTF-8")
        }
        var page = Page(limit: defaultLimit, cursor: nil)
        if let text = query["limit"] {
            guard let limit = Int(text), (1...maxLimit).contains(limit) else {
                throw HTTPError(.invalidQuery, "limit must be a whole number from 1 to \(maxLimit)")
            }
            page.limit = limit
        }
        if let text = query["cursor"], !text.isEmpty {
            guard text.utf8.count <= 19, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let cursor = Int64(text) else {
                throw HTTPError(.invalidQuery, "cursor must be the nextCursor of an earlier page")
            }
            page.cursor = cursor
        }
        return page
    }
}
