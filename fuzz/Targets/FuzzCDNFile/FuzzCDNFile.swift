import Foundation
import FuzzSupport
@testable import Marquee

/// The CDN file loader: no crash on any bytes; a file it accepts has unique CDN names and key
/// ids, one live signing key per CDN, addresses that read the same when read again, and every
/// link it signs for an hmac-sha256 CDN verifies with the same configuration.
let verifier = TokenVerifier()
let source = "/videos/intro film.mp4"

runFuzzer { bytes in
    guard let configuration = try? CDNConfiguration.parse(Data(bytes)) else { return }
    check(Set(configuration.cdns.map(\.name)).count == configuration.cdns.count, "a CDN name is used twice")
    let ids = configuration.cdns.flatMap { $0.keys.map(\.id) }
    check(Set(ids).count == ids.count, "a key id is used twice")
    check(CDNConfiguration.skewRange.contains(configuration.skewSeconds), "skew \(configuration.skewSeconds)")
    for cdn in configuration.cdns {
        check(CDNConfiguration.isIdentifier(cdn.name), "the name \(cdn.name.debugDescription)")
        check(!cdn.signingKey.retired && cdn.keys.contains { $0.id == cdn.signingKey.id }, "\(cdn.name) signs with a retired or foreign key")
        check(CDNConfiguration.lifetimeRange.contains(cdn.lifetimeSeconds), "\(cdn.name) lifetime \(cdn.lifetimeSeconds)")
        check(!cdn.bindClientIp || cdn.scheme == .hmacSHA256, "\(cdn.name) binds the client with \(cdn.scheme)")
        guard let reread = try? CDNConfiguration.parseAddress(cdn.address, at: "address") else {
            fatalError("the address \(cdn.address.debugDescription) is refused when read again")
        }
        check(reread.address == cdn.address && reread.path == cdn.addressPath, "\(cdn.address.debugDescription) reads again as \(reread)")
        check(!cdn.addressPath.hasSuffix("/") && !cdn.addressPath.contains("..") && cdn.addressPath.utf8.allSatisfy(URLPath.isUnreserved),
              "the address path \(cdn.addressPath.debugDescription)")
        guard cdn.scheme == .hmacSHA256 else { continue }
        let now = 1_800_000_000
        let path = cdn.addressPath + source
        let query = cdn.scheme.query(src: source, path: path, key: cdn.signingKey, expires: now + cdn.lifetimeSeconds, clientIp: cdn.bindClientIp ? "192.0.2.7" : nil)
        let uri = URLPath.encoded(path) + "?" + query
        let refusal = verifier.verify(originalURI: uri, clientIp: "192.0.2.7", configuration: configuration, nowSeconds: now)
        check(refusal == nil, "the link \(uri) signed for \(cdn.name) is refused: \(refusal!.message)")
        if cdn.bindClientIp {
            check(verifier.verify(originalURI: uri, clientIp: "192.0.2.8", configuration: configuration, nowSeconds: now) != nil,
                  "a link bound to one client verifies for another")
        }
    }
}
