/// The JSON shapes of users in answers: this API's, and the earlier service's for its routes.
enum UserView {
    static func user(_ user: UserStore.Snapshot, limit: Int) -> JSONValue {
        .object([
            "id": .string(user.record.id),
            "name": .string(user.record.name),
            "subscription": .string(user.record.subscription),
            "createdAt": .string(Timestamp.iso8601(user.record.createdAt)),
            "streams": .array(user.liveLeases.map(lease)),
            "streamLimit": .int(limit),
            "lastOnline": user.streams.lastOnline.map { .string(Timestamp.iso8601($0)) } ?? .null,
        ])
    }

    static func lease(_ lease: StreamState.Lease) -> JSONValue {
        .object([
            "stream": .string(lease.stream),
            "startedAt": .string(Timestamp.iso8601(lease.startedAt)),
            "expiresAt": .string(Timestamp.iso8601(lease.expiresAt)),
        ])
    }

    /// A grant's answer: the lease, the slots now in use and the limit.
    static func grant(_ lease: StreamState.Lease, active: Int, limit: Int) -> JSONValue {
        guard case .object(var fields) = self.lease(lease) else { return .null }
        fields["active"] = .int(active)
        fields["limit"] = .int(limit)
        return .object(fields)
    }

    static func limitReached(active: [StreamState.Lease], limit: Int, message: String) -> HTTPError {
        HTTPError(409, "stream_limit_reached", message,
                  details: ["limit": .int(limit), "active": .array(active.map { .string($0.stream) })])
    }

    /// The earlier service's record: `Name`, `Subscription`, and `Status` with the active
    /// streams (lowercased, as it stored them) and `offline.lastOnline`; plus the `id`.
    static func legacy(_ user: UserStore.Snapshot) -> JSONValue {
        let live = user.liveLeases
        return .object([
            "id": .string(user.record.id),
            "Name": .string(user.record.name),
            "Subscription": .string(user.record.subscription),
            "Status": .object([
                "Online": .object([
                    "Streams": .object([
                        "activeStreams": .int(live.count),
                        "watching": .array(live.map { .string($0.key) }),
                    ]),
                ]),
                "offline": .object([
                    "lastOnline": user.streams.lastOnline.map { .string(Timestamp.iso8601($0)) } ?? .null,
                ]),
            ]),
        ])
    }
}
