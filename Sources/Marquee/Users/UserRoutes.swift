import FastCGI

/// `/api/v1/users…`: accounts and their streams. Every route needs the admin token.
struct UserRoutes {
    let context: UsersContext

    static let defaultPageSize = 50
    static let maxPageSize = 500

    func register(in router: inout Router) {
        let context = self.context

        router.post("/api/v1/users") { request in
            try AdminAuthorization.require(request, services: context.services)
            let user = try NewUser.parse(try UserRequest.object(request))
            switch try context.users.create(user) {
            case .created(let record):
                context.counters.created.add(1, ordering: .relaxed)
                let snapshot = UserSnapshot(record: record, streams: StreamState(), now: record.createdAt)
                return .jsonBytes(201, UserView.user(snapshot, limit: context.settings.limit(for: record.subscription)),
                                  headers: [(name: "Location", value: "/api/v1/users/\(record.id)")])
            case .exists(let record):
                throw HTTPError(409, "user_exists", "a user with id '\(record.id)' already exists")
            }
        }

        router.get("/api/v1/users") { request in
            try AdminAuthorization.require(request, services: context.services)
            let page = try UserRequest.page(request, defaultLimit: Self.defaultPageSize, maxLimit: Self.maxPageSize)
            let (users, nextCursor) = try context.users.page(after: page.cursor, limit: page.limit)
            let settings = context.settings
            return .jsonBytes(200, UserView.page(users, nextCursor: nextCursor) { settings.limit(for: $0.record.subscription) })
        }

        router.get("/api/v1/users/{id}") { request in
            try AdminAuthorization.require(request, services: context.services)
            let id = try Identifier.user(request)
            guard let user = try context.users.user(id) else { throw Self.unknownUser(id) }
            return .jsonBytes(200, UserView.user(user, limit: context.settings.limit(for: user.record.subscription)))
        }

        router.delete("/api/v1/users/{id}") { request in
            try AdminAuthorization.require(request, services: context.services)
            let id = try Identifier.user(request)
            guard try context.users.delete(id) != nil else { throw Self.unknownUser(id) }
            context.counters.deleted.add(1, ordering: .relaxed)
            return .noContent
        }

        router.post("/api/v1/users/{id}/streams") { request in
            try AdminAuthorization.require(request, services: context.services)
            let id = try Identifier.user(request)
            let object = try UserRequest.object(request)
            var errors = FieldErrors()
            let stream = UserRequest.identifier(object, "stream", into: &errors)
            try errors.check()
            guard case .decided(let outcome, let limit) = try context.users.grant(stream!, to: id, settings: context.settings) else {
                throw Self.unknownUser(id)
            }
            context.counters.count(outcome)
            switch outcome {
            case .granted(let lease, let active):
                return .jsonBytes(201, UserView.grant(lease, active: active, limit: limit),
                                  headers: [(name: "Location", value: "/api/v1/users/\(id)/streams/\(lease.stream)")])
            case .renewed(let lease, let active):
                return .jsonBytes(200, UserView.grant(lease, active: active, limit: limit))
            case .refused(let active):
                throw UserView.limitReached(active: active, limit: limit,
                                            message: "user '\(id)' already watches \(active.count) of \(limit) concurrent streams")
            }
        }

        router.put("/api/v1/users/{id}/streams/{stream}") { request in
            try AdminAuthorization.require(request, services: context.services)
            let id = try Identifier.user(request)
            let stream = try Identifier.stream(request)
            switch try context.users.renew(stream, of: id, lease: context.settings.lease) {
            case .unknownUser: throw Self.unknownUser(id)
            case .notActive: throw Self.notActive(stream, id)
            case .done(let lease):
                context.counters.renewals.add(1, ordering: .relaxed)
                return .jsonBytes(200, UserView.lease(lease))
            }
        }

        router.delete("/api/v1/users/{id}/streams/{stream}") { request in
            try AdminAuthorization.require(request, services: context.services)
            let id = try Identifier.user(request)
            let stream = try Identifier.stream(request)
            switch try context.users.release(stream, of: id) {
            case .unknownUser: throw Self.unknownUser(id)
            case .notActive: throw Self.notActive(stream, id)
            case .done:
                context.counters.releases.add(1, ordering: .relaxed)
                return .noContent
            }
        }
    }

    static func unknownUser(_ id: String) -> HTTPError {
        HTTPError(404, "user_not_found", "no user with id '\(id)'")
    }

    static func notActive(_ stream: String, _ id: String) -> HTTPError {
        HTTPError(404, "stream_not_active", "stream '\(stream)' is not active for user '\(id)'; request it again")
    }
}
