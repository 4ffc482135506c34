/// Which callers an internal-only route answers, by REMOTE_ADDR: the address nginx saw, which
/// a client cannot choose (its headers reach the worker as HTTP_* params). nginx applies the
/// same rules from the same settings; this is the second lock, for a path spelling or a
/// location that nginx lets through.
public enum CallerRule: Sendable {
    /// The host itself: the status page and the token verifier.
    case loopback
    /// MARQUEE_INTERNAL_NETWORKS, or anyone with MARQUEE_LEGACY_USERS=open.
    case legacyUsers
    /// MARQUEE_INTERNAL_NETWORKS: the metrics page, for a Prometheus on another host.
    case internalNetworks

    public func admits(remoteAddress: String?, settings: Settings) -> Bool {
        if self == .legacyUsers && settings.legacyUsers == .open { return true }
        guard let address = remoteAddress.flatMap(IPAddress.init) else { return false }
        switch self {
        case .loopback: return IPNetwork.loopback.contains(address)
        case .legacyUsers, .internalNetworks: return settings.internalNetworks.contains(address)
        }
    }

    /// The check a route runs before its handler; the settings are read per request, so a
    /// reload applies at once.
    public func admission(_ services: Services) -> Router.Admission {
        let rule = self
        return { request in
            guard rule.admits(remoteAddress: request.param("REMOTE_ADDR"), settings: services.settings) else {
                throw HTTPError(403, "forbidden", rule == .loopback ? "this route answers the host itself only"
                                                                    : "this route answers internal networks only")
            }
        }
    }
}
