import FastCGI

/// The earlier service's routes, for its clients: same paths, bodies, statuses and texts,
/// bugs of its shapes included (README, "Drop-in routes"). No admin token, as before: nginx
/// admits internal networks only unless MARQUEE_LEGACY_USERS=open.
///
/// Its Express app matched paths ignoring case and answered as Express's `res.send` does: a
/// string is `text/html; charset=utf-8`, an object `application/json; charset=utf-8`, and
/// every refusal was 400 "Bad Request", text like every other answer of its. Its clients check
/// for 200 and read those texts, so a refused stream is a 200 too; the 409 stays on /api/v1.
struct LegacyUserRoutes {
    let context: UsersContext

    static let defaultPageSize = 1000
    static let maxPageSize = 10_000

    func register(in router: inout Router) {
        let context = self.context

        // Its clients probe the root before anything else.
        router.get("/") { _ in Self.plain(200) }

        let getUser: Handler = { request in
            let id = try Identifier.validated(request.query["id"] ?? "", what: "user id")
            guard let user = try context.users.user(id) else { throw UserRoutes.unknownUser(id) }
            return Self.json(UserView.legacy(user))
        }

        // Its clients send JSON under any content type (`application/x-www-form-urlencoded`
        // from its own tests), so the body is read as JSON whatever the header says.
        let createUser: Handler = { request in
            let user = try NewUser.parse(try UserRequest.object(request), nameField: "Name", subscriptionField: "Subscription")
            switch try context.users.create(user) {
            case .created(let record):
                context.counters.created.add(1, ordering: .relaxed)
                return Self.html("\(record.name) created")
            case .exists(let record):
                throw HTTPError(.userExists, "a user with id '\(record.id)' already exists")
            }
        }

        let removeUser: Handler = { request in
            let object = try UserRequest.object(request)
            var errors = FieldErrors()
            let id = UserRequest.identifier(object, "id", into: &errors)
            try errors.check()
            guard let record = try context.users.delete(id!) else { throw UserRoutes.unknownUser(id!) }
            context.counters.deleted.add(1, ordering: .relaxed)
            return Self.html("user \(record.id) successfully deleted")
        }

        // The earlier service answered its whole database; this answers it a page at a time,
        // in the same shape, with `nextCursor` when there is more (older clients ignore it).
        let getAllUsers: Handler = { request in
            let page = try UserRequest.page(request, defaultLimit: Self.defaultPageSize, maxLimit: Self.maxPageSize)
            let (users, nextCursor) = try context.users.page(after: page.cursor, limit: page.limit)
            return Self.json(UserView.legacyPage(users, nextCursor: nextCursor))
        }

        let requestStream: Handler = { request in
            let object = try UserRequest.object(request)
            var errors = FieldErrors()
            let id = UserRequest.identifier(object, "id", into: &errors)
            let stream = UserRequest.identifier(object, "stream", into: &errors)
            try errors.check()
            guard case .decided(let outcome, _) = try context.users.grant(stream!, to: id!, settings: context.settings) else {
                throw UserRoutes.unknownUser(id!)
            }
            context.counters.count(outcome)
            switch outcome {
            // Both texts name the stream as this request spelt it, as the earlier service did.
            case .granted:
                // "succesful": the earlier service's spelling, which its clients compare against.
                return Self.html("Request for \(stream!) succesful")
            case .renewed:
                return Self.html("User \(id!) is already watching \(stream!)")
            case .refused:
                return Self.html("User - \(id!) has exceeded maximum concurrent streams allowed.")
            }
        }

        for (path, handler) in [("/getuser", getUser), ("/getallusers", getAllUsers)] {
            router.addCaseInsensitive("GET", path, Self.legacy(handler))
        }
        for (path, handler) in [("/createuser", createUser), ("/removeuser", removeUser), ("/requeststream", requestStream)] {
            router.addCaseInsensitive("POST", path, Self.legacy(handler))
        }
    }

    /// Refusals as the earlier service answered them: every client error is its 400
    /// "Bad Request" (an unknown user too), except a body over the limit; server errors keep
    /// their status, as text.
    static func legacy(_ handler: @escaping Handler) -> Handler {
        { request in
            do {
                return try handler(&request)
            } catch let error as HTTPError {
                switch error.status {
                case 413: return plain(413, headers: error.headers)
                case 400..<500: return plain(400)
                default: return plain(error.status, headers: error.headers)
                }
            }
        }
    }

    static func html(_ text: String) -> FastCGIResponse {
        FastCGIResponse(status: 200, headers: [(name: "Content-Type", value: "text/html; charset=utf-8")], body: Array(text.utf8))
    }

    static func json(_ body: [UInt8]) -> FastCGIResponse {
        FastCGIResponse(status: 200, headers: [(name: "Content-Type", value: "application/json; charset=utf-8")], body: body)
    }

    /// The reason phrase as its text, the way the earlier service sent its statuses.
    static func plain(_ status: Int, headers: [(name: String, value: String)] = []) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: [(name: "Content-Type", value: "text/html; charset=utf-8")] + headers,
                        body: Array(FastCGIResponse.reason(for: status).utf8))
    }
}
