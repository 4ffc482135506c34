/// The JSON shapes of users in answers: this API's, and the earlier service's for its routes.
enum UserView {
    static func user(_ user: UserSnapshot, limit: Int) -> [UInt8] {
        var json = JSONWriter()
        self.user(user, limit: limit, into: &json)
        return json.bytes
    }

    static func user(_ user: UserSnapshot, limit: Int, into json: inout JSONWriter) {
        json.object { json in
            json.key("createdAt")
            json.string(Timestamp.iso8601(user.record.createdAt))
            json.key("id")
            json.string(user.record.id)
            json.key("lastOnline")
            time(user.streams.lastOnline, into: &json)
            json.key("name")
            json.string(user.record.name)
            json.key("streamLimit")
            json.int(limit)
            json.key("streams")
            json.array(user.liveLeases) { json, lease in self.lease(lease, into: &json) }
            json.key("subscription")
            json.string(user.record.subscription)
        }
    }

    /// `{"nextCursor", "users"}`: one page of the listing.
    static func page(_ users: [UserSnapshot], nextCursor: Int64?, limit: (UserSnapshot) -> Int) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            json.key("nextCursor")
            if let nextCursor { json.string(String(nextCursor)) } else { json.null() }
            json.key("users")
            json.array(users) { json, user in self.user(user, limit: limit(user), into: &json) }
        }
        return json.bytes
    }

    static func lease(_ lease: StreamState.Lease) -> [UInt8] {
        var json = JSONWriter()
        self.lease(lease, into: &json)
        return json.bytes
    }

    static func lease(_ lease: StreamState.Lease, into json: inout JSONWriter) {
        json.object { json in
            leaseFields(lease, into: &json)
        }
    }

    /// A grant's answer: the lease, the slots now in use and the limit.
    static func grant(_ lease: StreamState.Lease, active: Int, limit: Int) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            json.key("active")
            json.int(active)
            json.key("limit")
            json.int(limit)
            leaseFields(lease, into: &json)
        }
        return json.bytes
    }

    /// `expiresAt`, `startedAt`, `stream`: they sort after every other key of a grant.
    private static func leaseFields(_ lease: StreamState.Lease, into json: inout JSONWriter) {
        json.key("expiresAt")
        json.string(Timestamp.iso8601(lease.expiresAt))
        json.key("startedAt")
        json.string(Timestamp.iso8601(lease.startedAt))
        json.key("stream")
        json.string(lease.stream)
    }

    static func limitReached(active: [StreamState.Lease], limit: Int, message: String) -> HTTPError {
        HTTPError(409, "stream_limit_reached", message,
                  details: ["limit": .int(limit), "active": .array(active.map { .string($0.stream) })])
    }

    // MARK: The earlier service's shapes

    static func legacy(_ user: UserSnapshot) -> [UInt8] {
        var json = JSONWriter()
        legacy(user, into: &json)
        return json.bytes
    }

    /// Its record, keys in its order: `Name`, `Subscription`, then `Status` with the live
    /// streams (lowercased, as it stored them) and `offline.lastOnline`. No `id`: the id is
    /// the record's key in its database.
    static func legacy(_ user: UserSnapshot, into json: inout JSONWriter) {
        let live = user.liveLeases
        json.object { json in
            json.key("Name")
            json.string(user.record.name)
            json.key("Subscription")
            json.string(user.record.subscription)
            json.key("Status")
            json.object { json in
                json.key("Online")
                json.object { json in
                    json.key("Streams")
                    json.object { json in
                        json.key("activeStreams")
                        json.int(live.count)
                        json.key("watching")
                        json.array(live) { json, lease in json.string(lease.key) }
                    }
                }
                json.key("offline")
                json.object { json in
                    json.key("lastOnline")
                    time(user.streams.lastOnline, into: &json)
                }
            }
        }
    }

    /// Its whole-database shape, `{"Users": {"<id>": …}}`, a page at a time.
    static func legacyPage(_ users: [UserSnapshot], nextCursor: Int64?) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            json.key("Users")
            json.object { json in
                for user in users {
                    json.key(user.record.id)
                    legacy(user, into: &json)
                }
            }
            if let nextCursor {
                json.key("nextCursor")
                json.string(String(nextCursor))
            }
        }
        return json.bytes
    }

    private static func time(_ millis: UInt64?, into json: inout JSONWriter) {
        if let millis { json.string(Timestamp.iso8601(millis)) } else { json.null() }
    }
}
