import NIOConcurrencyHelpers

/// The film URLs a worker has already checked, by the request's raw query string. Clients ask
/// for the same few films over and over, and decoding the query, checking the URL and hashing
/// its key was a fifth of a cached hit's cost in the worker.
///
/// Bounded: an anonymous client controls the keys, so when the memo is full it starts again
/// empty rather than evicting one by one; a client spraying new URLs costs only the parse every
/// request paid before. Belongs to one policy: a reload makes a new memo.
final class FilmURLMemo: Sendable {
    static let capacity = 1024
    /// Longer query strings are parsed every time: the memo holds at most this much text.
    static let maxQueryLength = 512

    private let films = NIOLockedValueBox<[String: FilmURL]>([:])

    subscript(query: String) -> FilmURL? {
        films.withLockedValue { $0[query] }
    }

    func remember(_ film: FilmURL, for query: String) {
        guard query.utf8.count <= Self.maxQueryLength else { return }
        films.withLockedValue { films in
            if films.count >= Self.capacity { films.removeAll(keepingCapacity: true) }
            films[query] = film
        }
    }

    var count: Int { films.withLockedValue { $0.count } }
}
