import Crypto
import Foundation

/// The CDNs that video sources are signed for, read from the JSON file named by
/// MARQUEE_CDNS_FILE. Validated whole before use, so that a bad file stops the worker (or
/// refuses the reload) instead of minting links nobody can verify. No message ever quotes a
/// secret.
///
///     {
///       "lifetimeSeconds": 3600, "skewSeconds": 30, "bindClientIp": false,
///       "cdns": [
///         {"name": "edge-a", "address": "https://a.example.com/media", "scheme": "hmac-sha256",
///          "keys": [{"id": "2025-06", "secret": "…", "active": true},
///                   {"id": "2025-01", "secret": "…", "retired": true}]}
///       ]
///     }
///
/// Without the file, the worker signs for the local nginx's `/media/secure/` location when
/// MARQUEE_SECURE_LINK_SECRET is set, and has no CDN otherwise.
public struct CDNConfiguration: Sendable {
    public static let variable = "MARQUEE_CDNS_FILE"
    public static let secureLinkSecretVariable = "MARQUEE_SECURE_LINK_SECRET"
    static let defaultLifetimeSeconds = 3600
    static let defaultSkewSeconds = 30
    static let lifetimeRange = 1...604_800
    static let skewRange = 0...3600
    static let maxCDNs = 64
    static let maxKeysPerCDN = 16
    static let minimumSecretBytes = 16

    public let cdns: [CDN]
    public let skewSeconds: Int
    /// Every key that `hmac-sha256` verification may meet, by id.
    let verificationKeys: [String: VerificationKey]

    init(cdns: [CDN], skewSeconds: Int) {
        self.cdns = cdns
        self.skewSeconds = skewSeconds
        var keys: [String: VerificationKey] = [:]
        for cdn in cdns where cdn.scheme == .hmacSHA256 {
            for key in cdn.keys {
                keys[key.id] = VerificationKey(key: key, bindsClientIp: cdn.bindClientIp)
            }
        }
        verificationKeys = keys
    }

    public static let none = CDNConfiguration(cdns: [], skewSeconds: defaultSkewSeconds)

    public struct CDN: Sendable {
        public var name: String
        /// An http(s) URL or a path on this host, without a trailing slash.
        public var address: String
        /// The path part of `address`: what the edge sees in front of a source's `src`.
        public var addressPath: String
        public var scheme: TokenScheme
        public var keys: [Key]
        public var signingKey: Key
        public var lifetimeSeconds: Int
        public var bindClientIp: Bool
    }

    /// Unchecked because swift-crypto marks neither SymmetricKey nor HMAC Sendable, though the
    /// key is immutable and the HMAC is a value whose digests copy on write.
    public struct Key: @unchecked Sendable {
        public var id: String
        public var retired: Bool
        let secret: [UInt8]
        let symmetricKey: SymmetricKey
        /// Keyed once: a copy signs without deriving the pads again.
        let hmac: HMAC<SHA256>
    }

    struct VerificationKey: Sendable {
        var key: Key
        var bindsClientIp: Bool
    }

    /// The configuration the settings name: the file, else the built-in local CDN, else none.
    public static func load(_ reader: SettingsReader) throws(SettingsError) -> CDNConfiguration {
        if let path = reader.string(variable) {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw SettingsError(variable: variable, problem: "cannot read \(path)")
            }
            do {
                return try parse(data)
            } catch {
                throw SettingsError(variable: variable, problem: "\(path): \(error.problem)")
            }
        }
        if let secret = reader.string(secureLinkSecretVariable) {
            do {
                let key = try makeKey(id: "local", secret: secret, retired: false, scheme: .nginxSecureLink, at: "")
                let local = CDN(name: "local", address: "/media/secure", addressPath: "/media/secure", scheme: .nginxSecureLink,
                                keys: [key], signingKey: key, lifetimeSeconds: defaultLifetimeSeconds, bindClientIp: false)
                return CDNConfiguration(cdns: [local], skewSeconds: defaultSkewSeconds)
            } catch {
                throw SettingsError(variable: secureLinkSecretVariable, problem: error.problem)
            }
        }
        return .none
    }

    struct Problem: Error {
        var problem: String
        init(_ problem: String) { self.problem = problem }
    }

    static func parse(_ data: Data) throws(Problem) -> CDNConfiguration {
        guard case .object(let top)? = try? JSONReader.parse(Array(data)) else {
            throw Problem("not a JSON object")
        }
        try allowOnly(["cdns", "lifetimeSeconds", "skewSeconds", "bindClientIp"], in: top, at: "")
        let lifetime = try integer(top["lifetimeSeconds"], at: "lifetimeSeconds", range: lifetimeRange) ?? defaultLifetimeSeconds
        let skew = try integer(top["skewSeconds"], at: "skewSeconds", range: skewRange) ?? defaultSkewSeconds
        let bindClientIp = try boolean(top["bindClientIp"], at: "bindClientIp") ?? false
        guard case .array(let list)? = top["cdns"] else { throw Problem("cdns: expected a list of CDNs") }
        guard list.count <= maxCDNs else { throw Problem("cdns: at most \(maxCDNs) CDNs") }
        var cdns: [CDN] = []
        var names: Set<String> = []
        var keyIds: Set<String> = []
        for (index, element) in list.enumerated() {
            let cdn = try parseCDN(element, at: "cdns[\(index)]", lifetime: lifetime, bindClientIp: bindClientIp)
            guard names.insert(cdn.name).inserted else { throw Problem("cdns[\(index)].name: '\(cdn.name)' is used twice") }
            for key in cdn.keys {
                // Verification finds a key by its id alone, so ids are unique across the file.
                guard keyIds.insert(key.id).inserted else { throw Problem("cdns[\(index)]: key id '\(key.id)' is used twice in the file") }
            }
            cdns.append(cdn)
        }
        return CDNConfiguration(cdns: cdns, skewSeconds: skew)
    }

    private static func parseCDN(_ element: JSONValue, at path: String, lifetime: Int, bindClientIp: Bool) throws(Problem) -> CDN {
        guard case .object(let object) = element else { throw Problem("\(path): expected an object") }
        try allowOnly(["name", "address", "scheme", "keys", "lifetimeSeconds", "bindClientIp"], in: object, at: path)
        guard case .string(let name)? = object["name"], isIdentifier(name) else {
            throw Problem("\(path).name: expected 1 to 64 of A-Z a-z 0-9 . _ -")
        }
        let scheme: TokenScheme
        switch object["scheme"] {
        case nil: scheme = .hmacSHA256
        case .string(let text)?:
            guard let known = TokenScheme(rawValue: text) else {
                throw Problem("\(path).scheme: expected one of \(TokenScheme.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            scheme = known
        default: throw Problem("\(path).scheme: expected a string")
        }
        guard case .string(let address)? = object["address"] else { throw Problem("\(path).address: expected a string") }
        let (trimmedAddress, addressPath) = try parseAddress(address, at: "\(path).address")
        let cdnLifetime = try integer(object["lifetimeSeconds"], at: "\(path).lifetimeSeconds", range: lifetimeRange) ?? lifetime
        var binds = bindClientIp
        if let own = try boolean(object["bindClientIp"], at: "\(path).bindClientIp") {
            guard !own || scheme == .hmacSHA256 else { throw Problem("\(path).bindClientIp: only hmac-sha256 can bind the client address") }
            binds = own
        }
        if scheme != .hmacSHA256 { binds = false }

        guard case .array(let keyList)? = object["keys"], !keyList.isEmpty, keyList.count <= maxKeysPerCDN else {
            throw Problem("\(path).keys: expected a list of 1 to \(maxKeysPerCDN) keys")
        }
        var keys: [Key] = []
        var active: [Key] = []
        for (index, element) in keyList.enumerated() {
            let keyPath = "\(path).keys[\(index)]"
            guard case .object(let keyObject) = element else { throw Problem("\(keyPath): expected an object") }
            try allowOnly(["id", "secret", "active", "retired"], in: keyObject, at: keyPath)
            guard case .string(let id)? = keyObject["id"], isIdentifier(id) else {
                throw Problem("\(keyPath).id: expected 1 to 64 of A-Z a-z 0-9 . _ -")
            }
            guard case .string(let secret)? = keyObject["secret"] else { throw Problem("\(keyPath).secret: expected a string") }
            let retired = try boolean(keyObject["retired"], at: "\(keyPath).retired") ?? false
            let isActive = try boolean(keyObject["active"], at: "\(keyPath).active") ?? false
            if retired && isActive { throw Problem("\(keyPath): a retired key cannot be the active one") }
            let key = try makeKey(id: id, secret: secret, retired: retired, scheme: scheme, at: keyPath)
            keys.append(key)
            if isActive { active.append(key) }
        }
        let live = keys.filter { !$0.retired }
        let signing: Key
        if active.count == 1 {
            signing = active[0]
        } else if active.isEmpty && live.count == 1 {
            signing = live[0]
        } else {
            throw Problem("\(path).keys: mark exactly one key \"active\": true (it signs; the others only verify until retired)")
        }
        return CDN(name: name, address: trimmedAddress, addressPath: addressPath, scheme: scheme, keys: keys,
                   signingKey: signing, lifetimeSeconds: cdnLifetime, bindClientIp: binds)
    }

    private static func makeKey(id: String, secret: String, retired: Bool, scheme: TokenScheme, at path: String) throws(Problem) -> Key {
        let field = path.isEmpty ? "the secret" : "\(path).secret"
        let bytes = Array(secret.utf8)
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 != 0x7f }) else {
            throw Problem("\(field): must be non-empty printable text without spaces")
        }
        // The legacy scheme's keys are whatever the earlier service used; the others sign new links.
        if scheme != .md5Legacy && bytes.count < minimumSecretBytes {
            throw Problem("\(field): must be at least \(minimumSecretBytes) bytes for \(scheme.rawValue)")
        }
        let symmetricKey = SymmetricKey(data: bytes)
        return Key(id: id, retired: retired, secret: bytes, symmetricKey: symmetricKey, hmac: HMAC<SHA256>(key: symmetricKey))
    }

    /// Splits an address into the text put in front of `src` and the path the edge sees.
    static func parseAddress(_ address: String, at path: String) throws(Problem) -> (address: String, path: String) {
        var text = address
        while text.hasSuffix("/") { text.removeLast() }
        let invalid = Problem("\(path): expected an http(s) URL or a path starting with /, without query, fragment or credentials, its path of A-Z a-z 0-9 - . _ ~ /")
        // The path is signed as the edge decodes it, so it must read the same encoded or not.
        func isPlainPath(_ path: String) -> Bool {
            path.utf8.allSatisfy(URLPath.isUnreserved) && !path.contains("..") && !path.contains("//")
        }
        if text.isEmpty || text.hasPrefix("/") {
            guard isPlainPath(text) else { throw invalid }
            return (text, text)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil, components.query == nil, components.fragment == nil,
              isPlainPath(components.percentEncodedPath) else {
            throw invalid
        }
        return (text, components.percentEncodedPath)
    }

    private static func allowOnly(_ allowed: Set<String>, in object: [String: JSONValue], at path: String) throws(Problem) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            let place = path.isEmpty ? unknown : "\(path).\(unknown)"
            throw Problem("\(place): unknown field (expected \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private static func integer(_ value: JSONValue?, at path: String, range: ClosedRange<Int>) throws(Problem) -> Int? {
        guard let value else { return nil }
        guard case .int(let number) = value, range.contains(number) else {
            throw Problem("\(path): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    private static func boolean(_ value: JSONValue?, at path: String) throws(Problem) -> Bool? {
        guard let value else { return nil }
        guard case .bool(let flag) = value else { throw Problem("\(path): expected true or false") }
        return flag
    }

    static func isIdentifier(_ text: String) -> Bool {
        let bytes = text.utf8
        return (1...64).contains(bytes.count) && bytes.allSatisfy {
            switch $0 {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
            default: false
            }
        }
    }
}
