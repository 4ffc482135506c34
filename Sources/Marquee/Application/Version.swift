import Foundation

public enum MarqueeVersion {
    public static let current = "0.1.0"
    /// The commit the binary was built from, as deploy/install records it in
    /// MARQUEE_BUILD_COMMIT; "unknown" otherwise.
    public static let commit = ProcessInfo.processInfo.environment["MARQUEE_BUILD_COMMIT"] ?? "unknown"
}
