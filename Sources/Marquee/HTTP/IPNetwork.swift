/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address (`::1`).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let base: IPAddress
    public let prefixBits: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            // Digits only: Int("+8") would accept a sign.
            guard !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
                  let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            prefixBits = prefix
        } else {
            prefixBits = bits
        }
        base = address
    }

    /// Whether `address` is in the range. An IPv4-mapped IPv6 address counts as its IPv4 one.
    public func contains(_ address: IPAddress) -> Bool {
        let candidate = base.bytes.count == 4 ? address.unmapped : address
        guard candidate.bytes.count == base.bytes.count else { return false }
        var left = prefixBits
        for (mine, theirs) in zip(base.bytes, candidate.bytes) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xff : ~(0xff >> UInt8(left))
            if mine & mask != theirs & mask { return false }
            left -= 8
        }
        return true
    }

    /// The form nginx's `allow` takes.
    public var description: String {
        prefixBits == base.bytes.count * 8 ? base.text : "\(base.text)/\(prefixBits)"
    }

    /// The host's own addresses as nginx's loopback-only locations admit them: exactly these
    /// two, so that both layers refuse 127.0.0.2 alike.
    public static let loopback = [IPNetwork("127.0.0.1")!, IPNetwork("::1")!]

    /// Comma- or space-separated addresses and ranges; the error names the first entry that is neither.
    public static func list(_ text: String) -> Result<[IPNetwork], ListError> {
        var networks: [IPNetwork] = []
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = IPNetwork(String(entry)) else { return .failure(ListError(entry: String(entry))) }
            networks.append(network)
        }
        return .success(networks)
    }

    public struct ListError: Error {
        public let entry: String
    }
}

extension [IPNetwork] {
    public func contains(_ address: IPAddress) -> Bool {
        contains { $0.contains(address) }
    }
}
