import Foundation

/// An account as stored under `users/by-id/<id>`. Written once at creation (synced to disk)
/// and deleted with the user; the volatile stream state lives beside it in `StreamState`.
struct UserRecord: Sendable, Equatable {
    static let maxNameLength = 200
    static let maxSubscriptionLength = 64
    private static let recordVersion: UInt8 = 1

    var id: String
    var name: String
    var subscription: String
    /// Milliseconds since the epoch.
    var createdAt: UInt64
    /// Creation order, the key of the listing index: pages stay stable while users are added.
    var sequence: Int64

    func encoded() -> [UInt8] {
        var writer = RecordWriter(version: Self.recordVersion)
        writer.integer(createdAt)
        writer.integer(UInt64(bitPattern: sequence))
        writer.string(id)
        writer.string(name)
        writer.string(subscription)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> UserRecord {
        var reader = try RecordReader(bytes, version: recordVersion)
        let createdAt = try reader.integer()
        let sequence = Int64(bitPattern: try reader.integer())
        return UserRecord(id: try reader.string(), name: try reader.string(), subscription: try reader.string(),
                          createdAt: createdAt, sequence: sequence)
    }
}

/// What a new user is made of, checked; the store adds the id (if none), the time and the sequence.
struct NewUser: Sendable, Equatable {
    var id: String?
    var name: String
    var subscription: String

    /// Reads `{"name", "subscription", "id"?}` (or the earlier service's `Name`/`Subscription`
    /// with `nameField`/`subscriptionField`), collecting every problem into one 400.
    static func parse(_ object: [String: JSONValue], nameField: String = "name", subscriptionField: String = "subscription") throws(HTTPError) -> NewUser {
        var errors = FieldErrors()
        let user = read(object, nameField: nameField, subscriptionField: subscriptionField, errors: &errors)
        try errors.check()
        return user!
    }

    /// The user, or nil with every problem added to `errors`. Unknown fields are ignored.
    static func read(_ object: [String: JSONValue], nameField: String, subscriptionField: String, errors: inout FieldErrors) -> NewUser? {
        let problemsBefore = errors.problems.count
        let id = UserRequest.identifier(object, "id", required: false, into: &errors)
        let name = errors.string(object, nameField, maxLength: UserRecord.maxNameLength)
        if let name, name.trimmingCharacters(in: .whitespaces).isEmpty {
            errors.add(nameField, "must not be blank")
        }
        let subscription = errors.string(object, subscriptionField, maxLength: UserRecord.maxSubscriptionLength)
        guard errors.problems.count == problemsBefore, let name, let subscription else { return nil }
        return NewUser(id: id, name: name, subscription: subscription)
    }
}
