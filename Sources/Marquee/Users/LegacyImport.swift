import Foundation
import LMDBStore

/// Imports the earlier service's JSON database (`{"Users": {"<id>": {"Name", "Subscription",
/// "Status": …}}}`) for `marquee users import`. Users already in the store are skipped, so a
/// second run changes nothing. Its active streams are not carried over: a lease is live
/// state that a player renews, and a dump's streams have no player behind them any more.
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

    public static func run(file: String, store: Store) throws -> Report {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw FileError(description: "cannot read \(file): \(error.localizedDescription)")
        }
        return try run(data: data, store: store)
    }

    public static func run(data: Data, store: Store) throws -> Report {
        let users = try parse(data)
        var entries: [Entry] = []
        var candidates: [(user: NewUser, note: String?)] = []
        for id in users.keys.sorted() {
            switch candidate(id: id, users[id]!) {
            case .success(let candidate): candidates.append(candidate)
            case .failure(let skip): entries.append(Entry(id: id, outcome: .skipped(reason: skip.reason)))
            }
        }
        let outcomes = try UserStore(store: store).createAll(candidates.map(\.user))
        for (candidate, outcome) in zip(candidates, outcomes) {
            switch outcome {
            case .created(let record):
                entries.append(Entry(id: record.id, outcome: .imported, note: candidate.note))
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

    private static func candidate(id: String, _ value: JSONValue) -> Result<(user: NewUser, note: String?), Skip> {
        if let problem = Identifier.problem(id) { return .failure(Skip(reason: "the id \(problem)")) }
        guard case .object(var object) = value else { return .failure(Skip(reason: "the entry is not an object")) }
        object["id"] = .string(id)
        var errors = FieldErrors()
        guard let user = NewUser.read(object, nameField: "Name", subscriptionField: "Subscription", errors: &errors) else {
            return .failure(Skip(reason: errors.problems.map { "\($0.field) \($0.problem)" }.joined(separator: "; ")))
        }
        var streams: [JSONValue] = []
        if case .array(let watching)? = object["Status"]?["Online"]?["Streams"]?["watching"] { streams = watching }
        let note = streams.isEmpty ? nil
            : "\(streams.count) active stream\(streams.count == 1 ? "" : "s") not carried over: leases are live state, players request them again"
        return .success((user, note))
    }
}
