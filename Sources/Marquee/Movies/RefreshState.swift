import Foundation

/// The pool's record of refreshes, kept in the store without a time-to-live (state, never
/// evicted), so that a worker that takes the lead knows when the upstream was last asked.
/// Times are milliseconds since the epoch.
struct RefreshState: Codable, Sendable, Equatable {
    /// The last time any worker asked the upstream; pacing counts from here.
    var lastAttemptAt: UInt64?
    /// When the stored data was asked of the upstream.
    var refreshedAt: UInt64?
    var lastFailureAt: UInt64?
    var lastError: String?
    /// The first failed refresh since the stored data was loaded.
    var staleSince: UInt64?
    var succeeded = 0
    var failed = 0
    /// The pid of the worker that made the last attempt.
    var lastAttemptPid: Int?
    var films = 0
    var people = 0
    /// Films of the last load left out for want of a title.
    var untitledFilms = 0

    init() {}

    static func decode(_ bytes: [UInt8]?) -> RefreshState {
        guard let bytes, let state = try? JSONDecoder().decode(RefreshState.self, from: Data(bytes)) else { return RefreshState() }
        return state
    }

    func encoded() -> [UInt8] {
        (try? Array(JSONEncoder().encode(self))) ?? []
    }
}
