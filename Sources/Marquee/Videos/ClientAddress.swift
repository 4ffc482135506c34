import Foundation

/// The client's address: REMOTE_ADDR as nginx set it, unless that is one of the proxies named
/// in MARQUEE_TRUSTED_PROXIES; only then is X-Forwarded-For read, from the right, skipping
/// the trusted hops, since anything left of the first untrusted hop is the client's own claim.
public struct ClientAddress: Sendable {
    public static let variable = "MARQUEE_TRUSTED_PROXIES"

    let trusted: [IPNetwork]

    public static let noProxies = ClientAddress(trusted: [])

    /// Comma- or space-separated addresses and CIDR ranges, IPv4 or IPv6.
    public static func load(_ reader: SettingsReader) throws(SettingsError) -> ClientAddress {
        guard let text = reader.string(variable) else { return .noProxies }
        switch IPNetwork.list(text) {
        case .success(let networks): return ClientAddress(trusted: networks)
        case .failure(let error): throw SettingsError(variable: variable, problem: "'\(error.entry)' is not an IP address or CIDR range")
        }
    }

    public func resolve(remoteAddress: String?, forwardedFor: String?) -> String {
        guard let remote = remoteAddress.flatMap(IPAddress.init) else { return remoteAddress ?? "unknown" }
        guard isTrusted(remote), let forwardedFor else { return remote.text }
        var client = remote
        for hop in forwardedFor.split(separator: ",").reversed() {
            guard let address = IPAddress(hop.trimmingCharacters(in: .whitespaces)) else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client.text
    }

    private func isTrusted(_ address: IPAddress) -> Bool {
        trusted.contains(address)
    }
}
