import FastCGI

/// The earlier service's routes, for its clients: same paths and request shapes, JSON answers
/// with proper status codes. No admin token, as before: nginx admits internal networks only
/// unless MARQUEE_LEGACY_USERS=open. Its Express app matched paths ignoring case, and its
/// clients use both the documented lowercase paths and the camelCase ones of its code.
struct LegacyUserRoutes {
    let context: UsersContext

    static let defaultPageSize = 1000
    static let maxPageSize = 10_000

    func register(in router: inout Router) {
        let context = self.context

        let getUser: Handler = { request in
            guard let text = request.query["id"] else {
                throw HTTPError(400, "invalid_query", "send the user id as ?id=")
            }
            let id = try Identifier.validated(text, what: "user id")
            guard let user = try context.users.user(id) else { throw UserRoutes.unknownUser(id) }
            return .jsonBytes(200, UserView.legacy(user))
        }

        let createUser: Handler = { request in
            let user = try NewUser.parse(try UserRequest.object(request), nameField: "Name", subscriptionField: "Subscription")
            switch try context.users.create(user) {
            case .created(let record):
                context.counters.created.add(1, ordering: .relaxed)
                let snapshot = UserStore.Snapshot(record: record, streams: StreamState(), now: record.createdAt)
                return .jsonBytes(201, UserView.legacyMessage(id: record.id, message: "\(record.name) created", user: snapshot))
            case .exists(let record):
                throw HTTPError(409, "user_exists", "a user with id '\(record.id)' already exists")
            }
        }

        let removeUser: Handler = { request in
            let object = try UserRequest.object(request)
            var errors = FieldErrors()
            let id = UserRequest.identifier(object, "id", into: &errors)
            try errors.check()
            guard let record = try context.users.delete(id!) else { throw UserRoutes.unknownUser(id!) }
            context.counters.deleted.add(1, ordering: .relaxed)
            return .jsonBytes(200, UserView.legacyMessage(id: record.id, message: "User \(record.name) deleted"))
        }

        // The earlier service answered its whole database; this answers it a page at a time,
        // in the same shape, with `nextCursor` when there is more (older clients ignore it).
        let getAllUsers: Handler = { request in
            let page = try UserRequest.page(request, defaultLimit: Self.defaultPageSize, maxLimit: Self.maxPageSize)
            let (users, nextCursor) = try context.users.page(after: page.cursor, limit: page.limit)
            return .jsonBytes(200, UserView.legacyPage(users, nextCursor: nextCursor))
        }

        let requestStream: Handler = { request in
            let object = try UserRequest.object(request)
            var errors = FieldErrors()
            let id = UserRequest.identifier(object, "id", into: &errors)
            let stream = UserRequest.identifier(object, "stream", into: &errors)
            try errors.check()
            guard case .decided(let outcome, let limit) = try context.users.grant(stream!, to: id!, settings: context.settings) else {
                throw UserRoutes.unknownUser(id!)
            }
            context.counters.count(outcome)
            switch outcome {
            case .granted(let lease, let active):
                return .jsonBytes(201, UserView.grant(lease, active: active, limit: limit, message: "Request for \(lease.stream) successful"))
            case .renewed(let lease, let active):
                return .jsonBytes(200, UserView.grant(lease, active: active, limit: limit, message: "You are already watching \(lease.stream)"))
            case .refused(let active):
                throw UserView.limitReached(active: active, limit: limit,
                                            message: "User - \(id!) has exceeded maximum concurrent streams allowed.")
            }
        }

        for (path, handler) in [("/getuser", getUser), ("/getUser", getUser), ("/getallusers", getAllUsers), ("/getAllUsers", getAllUsers)] {
            router.get(path, handler)
        }
        for (path, handler) in [("/createuser", createUser), ("/createUser", createUser), ("/removeuser", removeUser),
                                ("/removeUser", removeUser), ("/requeststream", requestStream), ("/requestStream", requestStream)] {
            router.post(path, handler)
        }
    }
}
