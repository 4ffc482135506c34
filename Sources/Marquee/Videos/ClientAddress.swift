import Foundation

/// The client's address: REMOTE_ADDR as nginx set it, unless that is one of the proxies named
/// in MARQUEE_TRUSTED_PROXIES; only then is X-Forwarded-For read, from the right, skipping
/// the trusted hops, since anything left of the first untrusted hop is the client's own claim.
public struct ClientAddress: Sendable {
    public static let variable = "MARQUEE_TRUSTED_PROXIES"

    let trusted: [Network]

    public static let noProxies = ClientAddress(trusted: [])

    /// Comma- or space-separated addresses and CIDR ranges, IPv4 or IPv6.
    public static func load(_ reader: SettingsReader) throws(SettingsError) -> ClientAddress {
        guard let text = reader.string(variable) else { return .noProxies }
        var networks: [Network] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = Network(String(entry)) else {
                throw SettingsError(variable: variable, problem: "'\(entry)' is not an IP address or CIDR range")
            }
            networks.append(network)
        }
        return ClientAddress(trusted: networks)
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
        trusted.contains { $0.contains(address) }
    }

    struct IPAddress {
        var bytes: [UInt8]
        /// The canonical text, so that one client is always written the same way.
        var text: String

        init?(_ text: String) {
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                bytes = withUnsafeBytes(of: v4) { Array($0) }
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                bytes = withUnsafeBytes(of: v6) { Array($0) }
            } else {
                return nil
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = bytes.count == 4 ? AF_INET : AF_INET6
            _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            self.text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    struct Network {
        var base: [UInt8]
        var prefixBits: Int

        init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = IPAddress(String(parts[0])) else { return nil }
            let bits = address.bytes.count * 8
            if parts.count == 2 {
                guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
                prefixBits = prefix
            } else {
                prefixBits = bits
            }
            base = address.bytes
        }

        func contains(_ address: IPAddress) -> Bool {
            guard address.bytes.count == base.count else { return false }
            var left = prefixBits
            for (mine, theirs) in zip(base, address.bytes) where left > 0 {
                let mask: UInt8 = left >= 8 ? 0xff : ~(0xff >> UInt8(left))
                if mine & mask != theirs & mask { return false }
                left -= 8
            }
            return true
        }
    }
}
