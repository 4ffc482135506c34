import Foundation
import LMDBStore

/// Imports the earlier service's JSON database (`{"Users": {"<id>": {"Name", "Subscription",
/// "Status": …}}}`) for `marquee users import`. Users already in the store are skipped, so a
/// second run changes nothing. Each user's active streams come over as granted streams with a
/// normal lease (MARQUEE_STREAM_LEASE_SECONDS): players still watching keep their slots by
/// renewing them, as they do after any grant, and a stream whose player is gone frees its slot
/// when the lease runs out. Dropping them instead would let a user open a full set of new
/// streams the moment after a migration.
public enum LegacyImport {
    public struct Entry: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            case imported
            case skipped(reason: String)
        }

        public var id: String
        public var outcome: Outcome
        /// What was left out of an imported user.
        public var note: String?
    }

    public struct Report: Sendable {
        public var entries: [Entry]

        public var importedCount: Int { entries.filter { $0.outcome == .imported }.count }
        public var skippedCount: Int { entries.count - importedCount }

        /// One line per user, then a summary.
        public var lines: [String] {
            var lines: [String] = []
            for entry in entries {
                switch entry.outcome {
                case .imported:
                    lines.append("imported \(entry.id)" + (entry.note.map { " (\($0))" } ?? ""))
                case .skipped(let reason):
                    lines.append("skipped \(entry.id): \(reason)")
                }
            }
            lines.append("\(importedCount) imported, \(skippedCount) skipped")
            return lines
        }
    }

    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    /// `settings` gives the lease and the plans' limits of the imported streams.
    public static func run(file: String, store: Store, database: Database? = nil, settings: SettingsReader) throws -> Report {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw FileError(description: "cannot read \(file): \(error.localizedDescription)")
        }
        return try run(data: data, store: store, database: database, settings: settings)
    }

    public static func run(data: Data, store: Store, database: Database? = nil, settings reader: SettingsReader) throws -> Report {
        let settings = try StreamSettings(reader)
        let users = try parse(data)
        var entries: [Entry] = []
        var candidates: [Candidate] = []
        for id in users.keys.sorted() {
            switch candidate(id: id, users[id]!) {
            case .success(let candidate): candidates.append(candidate)
            case .failure(let skip): entries.append(Entry(id: id, outcome: .skipped(reason: skip.reason)))
            }
        }
        let results = try UsersContext.store(store, database: database).importAll(candidates.map { (user: $0.user, streams: $0.streams) }, settings: settings)
        for (candidate, result) in zip(candidates, results) {
            switch result.outcome {
            case .created(let record):
                let note = Self.note(granted: result.granted, refused: result.refused, invalid: candidate.invalidStreams, settings: settings)
                entries.append(Entry(id: record.id, outcome: .imported, note: note))
            case .exists(let stored) where stored.name == candidate.user.name && stored.subscription == candidate.user.subscription:
                entries.append(Entry(id: stored.id, outcome: .skipped(reason: "already present")))
            case .exists(let stored):
                entries.append(Entry(id: stored.id, outcome: .skipped(reason: "already present with another Name or Subscription; the stored user is kept")))
            }
        }
        entries.sort { $0.id < $1.id }
        return Report(entries: entries)
    }

    private static func parse(_ data: Data) throws -> [String: JSONValue] {
        let document: JSONValue
        do {
            document = try JSONReader.parse(Array(data))
        } catch {
            throw FileError(description: "the file is not valid UTF-8 JSON")
        }
        guard case .object(let users)? = document["Users"] else {
            throw FileError(description: "the file has no \"Users\" object; expected the earlier service's database")
        }
        return users
    }

    private struct Skip: Error {
        var reason: String
    }

    private struct Candidate {
        var user: NewUser
        var streams: [String]
        /// Entries of `watching` that are no valid stream id, left out.
        var invalidStreams: Int
    }

    private static func candidate(id: String, _ value: JSONValue) -> Result<Candidate, Skip> {
        if let problem = Identifier.problem(id) { return .failure(Skip(reason: "the id \(problem)")) }
        guard case .object(var object) = value else { return .failure(Skip(reason: "the entry is not an object")) }
        object["id"] = .string(id)
        var errors = FieldErrors()
        guard let user = NewUser.read(object, nameField: "Name", subscriptionField: "Subscription", errors: &errors) else {
            return .failure(Skip(reason: errors.problems.map { "\($0.field) \($0.problem)" }.joined(separator: "; ")))
        }
        var watching: [JSONValue] = []
        if case .array(let list)? = object["Status"]?["Online"]?["Streams"]?["watching"] { watching = list }
        let streams = watching.compactMap { value -> String? in
            guard case .string(let stream) = value, Identifier.problem(stream) == nil else { return nil }
            return stream
        }
        return .success(Candidate(user: user, streams: streams, invalidStreams: watching.count - streams.count))
    }
    /// What became of the user's active streams, when it had any.
    private static func note(granted: [String], refused: [String], invalid: Int, settings: StreamSettings) -> String? {
        var parts: [String] = []
        if !granted.isEmpty {
            parts.append("\(count(granted.count, "active stream")) granted with a lease of \(settings.lease.components.seconds) s")
        }
        if !refused.isEmpty {
            parts.append("over the plan's limit, not granted: \(refused.joined(separator: ", "))")
        }
        if invalid > 0 {
            parts.append("\(count(invalid, "stream")) with an invalid id left out")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
