import Foundation
import FuzzSupport
@testable import Marquee

/// The token verifier. An input is `<client address>\n<X-Original-URI>`.
/// - Nothing unsigned verifies: against a secret drawn at random for this run, which no input
///   can carry a signature for, every input is refused.
/// - Only what was signed verifies: against a secret known to the seeds (links signed with it
///   are in the corpus, to be mutated), an accepted input names a signed path with its token
///   exactly as minted, and for a bound key the client it was minted for.
/// - A token parameter named twice is refused, whatever the spelling of the query around it.
let verifier = TokenVerifier()
let now = 1_800_000_000

func configuration(secret: String) -> CDNConfiguration {
    let file = """
    {"skewSeconds": 30, "cdns": [
      {"name": "open", "address": "https://cdn.example/media", "keys": [{"id": "k1", "secret": "\(secret)"}]},
      {"name": "bound", "address": "/edge", "bindClientIp": true, "keys": [{"id": "k2", "secret": "\(secret)-bound"}]}
    ]}
    """
    return try! CDNConfiguration.parse(Data(file.utf8))
}

var randomSecret = ""
for _ in 0..<32 { randomSecret.append("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }
let unknown = configuration(secret: randomSecret)
let known = configuration(secret: "fuzz-known-secret-0123456789")

/// What was signed with the known secret: each link in the seed corpus is one of these.
struct Signed: Hashable {
    var path: String
    var expires: String
    var kid: String
    var sig: String
    var clientIp: String?
}
var signed: Set<Signed> = []
for cdn in known.cdns {
    for src in ["/videos/a.mp4", "/videos/intro film.mp4", "/v/x%y.m3u8"] {
        let clientIp: String? = cdn.bindClientIp ? "192.0.2.7" : nil
        let path = cdn.addressPath + src
        let query = cdn.scheme.query(src: src, path: path, key: cdn.signingKey, expires: now + 600, clientIp: clientIp)
        let token = QueryString.decode(query)
        signed.insert(Signed(path: path, expires: token["expires"]!, kid: token["kid"]!, sig: token["sig"]!, clientIp: clientIp))
        let uri = URLPath.encoded(path) + "?" + query
        // The control: a minted link verifies, so the refusals below are not for want of a working verifier.
        check(verifier.verify(originalURI: uri, clientIp: "192.0.2.7", configuration: known, nowSeconds: now) == nil, "the minted \(uri) is refused")
    }
}

runFuzzer { bytes in
    let text = String(decoding: bytes, as: UTF8.self)
    let newline = text.firstIndex(of: "\n") ?? text.startIndex
    let clientIp = String(text[..<newline])
    let uri = newline == text.startIndex ? text : String(text[text.index(after: newline)...])

    check(verifier.verify(originalURI: uri, clientIp: clientIp, configuration: unknown, nowSeconds: now) != nil,
          "\(uri.debugDescription) verifies for a secret drawn at random")

    let query = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(uri[uri.index(after: $0)...]) }
    if let query {
        let names = query.utf8.split(separator: UInt8(ascii: "&")).compactMap { pair in
            QueryString.percentDecoded(pair.prefix { $0 != UInt8(ascii: "=") })
        }
        let tokenNames = names.filter { ["expires", "kid", "sig"].contains($0) }
        if Set(tokenNames).count < tokenNames.count {
            check(TokenVerifier.repeatsTokenParameter(Substring(query)), "\(query.debugDescription) names a token parameter twice unnoticed")
        }
    }

    guard verifier.verify(originalURI: uri, clientIp: clientIp, configuration: known, nowSeconds: now) == nil else { return }
    let token = QueryString.decode(query ?? "")
    let rawPath = String(uri[..<(uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.endIndex)])
    let path = QueryString.percentDecoded(Substring(rawPath.replacing("+", with: "%2B"))) ?? ""
    let kid = token["kid"] ?? ""
    let match = Signed(path: path, expires: token["expires"] ?? "", kid: kid, sig: token["sig"] ?? "", clientIp: kid == "k2" ? clientIp : nil)
    check(signed.contains(match), "\(uri.debugDescription) from \(clientIp.debugDescription) verifies but was never signed so")
}
