import CoreMetrics
import LMDBStore
import Synchronization

/// Signs a video's sources for one CDN, chosen round-robin pool-wide: one shared counter of
/// the store, so that consecutive calls cycle through the CDNs whichever worker answers. A
/// mint writes nothing else to the store; keys are prepared when the file is read.
final class TokenMinter: Sendable {
    private let store: Store
    private let poolMints = Dictionary(uniqueKeysWithValues: TokenScheme.allCases.map {
        ($0, Counter(label: MetricNames.tokenMints, dimensions: [("scheme", $0.rawValue)]))
    })
    private let hmacTokens = Atomic<Int>(0)
    private let secureLinkTokens = Atomic<Int>(0)
    private let legacyTokens = Atomic<Int>(0)
    private let cursorFailures = Atomic<Int>(0)
    private let localCursor = Atomic<Int64>(0)

    init(store: Store) {
        self.store = store
    }

    func chooseCDN(in configuration: CDNConfiguration) -> CDNConfiguration.CDN? {
        let cdns = configuration.cdns
        guard cdns.count > 1 else { return cdns.first }
        let turn: Int64
        do {
            turn = try store.counter(VideoKeys.cdnCursor).next()
        } catch {
            // A store directory that refuses the counter file must not stop minting; this
            // worker goes on alone.
            cursorFailures.add(1, ordering: .relaxed)
            turn = localCursor.wrappingAdd(1, ordering: .relaxed).newValue
        }
        return cdns[Int((turn - 1) % Int64(cdns.count))]
    }

    /// The signed URL of each source of `video`, in order.
    /// `clientIp` is asked only by a CDN that binds links to the client's address.
    func sign(_ video: Video, for cdn: CDNConfiguration.CDN, clientIp: () -> String, nowSeconds: Int) -> [String] {
        let expires = nowSeconds + cdn.lifetimeSeconds
        let boundIp = cdn.bindClientIp ? clientIp() : nil
        let urls = video.sources.map { source in
            let path = cdn.addressPath + source.src
            let query = cdn.scheme.query(src: source.src, path: path, key: cdn.signingKey, expires: expires, clientIp: boundIp)
            return cdn.address + URLPath.encoded(source.src) + "?" + query
        }
        poolMints[cdn.scheme]?.increment(by: urls.count)
        switch cdn.scheme {
        case .hmacSHA256: hmacTokens.add(urls.count, ordering: .relaxed)
        case .nginxSecureLink: secureLinkTokens.add(urls.count, ordering: .relaxed)
        case .md5Legacy: legacyTokens.add(urls.count, ordering: .relaxed)
        }
        return urls
    }

    /// Tokens this worker has minted, by scheme, and round-robin turns the store refused.
    var figures: (byScheme: [TokenScheme: Int], cursorFailures: Int) {
        let byScheme: [TokenScheme: Int] = [
            .hmacSHA256: hmacTokens.load(ordering: .relaxed),
            .nginxSecureLink: secureLinkTokens.load(ordering: .relaxed),
            .md5Legacy: legacyTokens.load(ordering: .relaxed),
        ]
        return (byScheme, cursorFailures.load(ordering: .relaxed))
    }
}

/// A source path as it goes into a URL: everything but unreserved characters and `/` is
/// percent-encoded, and the edge decodes it back to the path that was signed.
enum URLPath {
    static func encoded(_ path: String) -> String {
        guard !path.utf8.allSatisfy(isUnreserved) else { return path }
        var output = [UInt8]()
        for byte in path.utf8 {
            if isUnreserved(byte) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(contentsOf: Hex.encode([byte]).uppercased().utf8)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"): true
        default: false
        }
    }
}
