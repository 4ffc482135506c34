#if canImport(Glibc)
import Glibc
#endif

/// Store times are milliseconds since the epoch; answers show them as ISO 8601 UTC with
/// milliseconds. Formatted from the integer, so that no rounding through a Double can
/// show a lease ending a millisecond before it does.
enum Timestamp {
    static func iso8601(_ millis: UInt64) -> String {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(padded(Int(parts.tm_year) + 1900, 4))-\(padded(Int(parts.tm_mon) + 1, 2))-\(padded(Int(parts.tm_mday), 2))"
            + "T\(padded(Int(parts.tm_hour), 2)):\(padded(Int(parts.tm_min), 2)):\(padded(Int(parts.tm_sec), 2))"
            + ".\(padded(Int(millis % 1000), 3))Z"
    }

    private static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
