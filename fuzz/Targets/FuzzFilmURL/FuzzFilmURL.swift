import Foundation
import FuzzSupport
@testable import Marquee

/// The film-URL normaliser: any URL it accepts rebuilds to an allow-listed host and film path,
/// the document fetched is on that host and path, and normalising again changes nothing.
let policy = FilmURLPolicy()

runFuzzer { bytes in
    let text = String(decoding: bytes, as: UTF8.self)
    guard let url = try? FilmURL.parse(text, policy: policy) else { return }
    check(url.normalised == "https://" + url.host + url.path, "\(url.normalised) is not https://host/path")
    check(policy.hosts.contains(url.host), "\(text.debugDescription) was accepted with host \(url.host)")
    guard let prefix = policy.pathPrefixes.first(where: { url.path.hasPrefix($0) }) else {
        fatalError("\(text.debugDescription) was accepted with path \(url.path)")
    }
    let slug = url.path.dropFirst(prefix.count)
    check(!slug.isEmpty && slug.count <= policy.maxSlugLength
          && slug.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") },
          "\(text.debugDescription) was accepted with slug \(slug)")
    let fetched = url.contentURL(viaplayBase: nil)
    check(fetched.scheme == "https" && fetched.host == url.host && fetched.path == url.path && fetched.query == nil && fetched.port == nil,
          "\(text.debugDescription) would fetch \(fetched.absoluteString)")
    guard let again = try? FilmURL.parse(url.normalised, policy: policy) else {
        fatalError("the normalised \(url.normalised) of \(text.debugDescription) is refused")
    }
    check(again == url, "normalising \(url.normalised) again gave \(again.normalised)")
    check(url.digest.utf8.count == 64 && url.digest.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) },
          "the digest \(url.digest) is not 64 hex digits")
}
