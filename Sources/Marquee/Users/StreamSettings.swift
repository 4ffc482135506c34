import Foundation

/// The stream limits and the lease length, from MARQUEE_STREAM_* (reloadable):
/// - `MARQUEE_STREAM_LIMIT` (default 3, 0…1000): concurrent streams of a plan not listed below.
/// - `MARQUEE_STREAM_LIMITS` (default empty): per-plan limits, `plan=N` entries separated by
///   commas, e.g. `basic plan=1,premium=4`. Plans match the user's subscription ignoring case
///   and surrounding spaces.
/// - `MARQUEE_STREAM_LEASE_SECONDS` (default 90, 1…3600): how long a grant or heartbeat holds
///   a slot; a player that stops renewing frees it after this time.
struct StreamSettings: Sendable, Equatable {
    static let limitRange = 0...1000
    static let maxPlanLength = 64

    var defaultLimit: Int
    var planLimits: [String: Int]
    var lease: Duration

    init(defaultLimit: Int = 3, planLimits: [String: Int] = [:], lease: Duration = .seconds(90)) {
        self.defaultLimit = defaultLimit
        self.planLimits = planLimits
        self.lease = lease
    }

    init(_ reader: SettingsReader) throws(SettingsError) {
        defaultLimit = try reader.int("MARQUEE_STREAM_LIMIT", default: 3, range: Self.limitRange)
        planLimits = try Self.parsePlanLimits(reader.string("MARQUEE_STREAM_LIMITS") ?? "")
        lease = try reader.seconds("MARQUEE_STREAM_LEASE_SECONDS", default: .seconds(90), range: 1...3600)
    }

    func limit(for subscription: String) -> Int {
        // Asked on every read of a user: skip the key work when no plan has its own limit.
        if planLimits.isEmpty { return defaultLimit }
        return planLimits[Self.planKey(subscription[...])] ?? defaultLimit
    }

    /// Plans compare ignoring case and surrounding spaces.
    static func planKey(_ subscription: Substring) -> String {
        var trimmed = subscription
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        return trimmed.lowercased()
    }

    static func parsePlanLimits(_ text: String) throws(SettingsError) -> [String: Int] {
        var limits: [String: Int] = [:]
        for rawEntry in text.split(separator: ",") {
            let entry = rawEntry.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            func refuse(_ problem: String) -> SettingsError {
                SettingsError(variable: "MARQUEE_STREAM_LIMITS", problem: "entry '\(entry)' \(problem); expected plan=N entries separated by commas")
            }
            guard let equals = entry.lastIndex(of: "=") else { throw refuse("has no '='") }
            let plan = planKey(entry[..<equals])
            let number = entry[entry.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !plan.isEmpty, plan.count <= maxPlanLength else { throw refuse("needs a plan name of 1 to \(maxPlanLength) characters") }
            guard let limit = Int(number), limitRange.contains(limit) else {
                throw refuse("needs a limit from \(limitRange.lowerBound) to \(limitRange.upperBound)")
            }
            guard limits[plan] == nil else { throw refuse("names a plan a second time") }
            limits[plan] = limit
        }
        return limits
    }
}
