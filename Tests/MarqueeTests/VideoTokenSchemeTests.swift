import Foundation
@testable import Marquee
import Testing

/// The signing schemes, the CDN file and the client address, without processes.
@Suite("Video token schemes")
struct VideoTokenSchemeTests {
    @Test("md5-legacy matches every vector of the earlier service, and its README example")
    func legacyVectors() throws {
        let vectors = try VideoFixtures.legacyVectors()
        #expect(vectors.count == 12)
        for vector in vectors {
            #expect(TokenScheme.legacyToken(src: vector.src, secret: Array(vector.key.utf8)) == vector.token, "key \(vector.key) \(vector.src)")
        }
        #expect(TokenScheme.legacyToken(src: "/big_buck_bunny.mp4", secret: Array("U5e0IskwtIfA".utf8)) == "666906502bbc3550b95d561fa14af3ae")
    }

    @Test("nginx-secure-link and hmac-sha256 agree with openssl")
    func schemesAgreeWithOpenSSL() throws {
        // printf '2147483647/media/secure/clip.mp4 marquee-test-secure-link' | openssl md5 -binary | base64url
        #expect(TokenScheme.secureLinkHash(path: "/media/secure/clip.mp4", expires: 2_147_483_647,
                                           secret: Array("marquee-test-secure-link".utf8)) == "YufkcMCpBTRKwidzdvYkxA")
        // printf '1700000000\n/media/protected/clip.mp4' | openssl dgst -sha256 -hmac protected-key-one-0123456789 -binary | base64url
        let configuration = try VideoFixtures.configuration(VideoFixtures.hmacCDN(name: "p", address: "/media/protected", keys: [("k1", true, false)]))
        let query = TokenScheme.hmacSHA256.query(src: "/clip.mp4", path: "/media/protected/clip.mp4", key: configuration.cdns[0].signingKey,
                                                 expires: 1_700_000_000, clientIp: nil)
        #expect(query == "expires=1700000000&kid=k1&sig=EXIcN02azbihq0794z42Cvrvzxpa-41CTkqYAJmCKOw")
    }

    @Test("base64url has no padding and decodes only its own alphabet")
    func base64URL() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.decode("ab+c") == nil)
        #expect(Base64URL.decode("abc=") == nil)
        #expect(Base64URL.decode("a") == nil)
    }

    @Test("hmac-sha256 verification: valid, tampered, expired within and past the skew, rotated and retired keys, bound address")
    func hmacVerification() throws {
        let verifier = TokenVerifier()
        let now = 1_800_000_000
        func link(_ configuration: CDNConfiguration, cdn: Int = 0, src: String = "/clip.mp4", expires: Int, ip: String? = nil) -> String {
            let cdn = configuration.cdns[cdn]
            let query = cdn.scheme.query(src: src, path: cdn.addressPath + src, key: cdn.signingKey, expires: expires, clientIp: ip)
            return cdn.addressPath + src + "?" + query
        }
        func verdict(_ uri: String?, _ configuration: CDNConfiguration, ip: String = "127.0.0.1", at time: Int = now) -> String {
            verifier.verify(originalURI: uri, clientIp: ip, configuration: configuration, nowSeconds: time)?.code.code ?? "valid"
        }
        let first = try VideoFixtures.configuration(VideoFixtures.hmacCDN(name: "p", address: "/media/protected", keys: [("k1", true, false)]),
                                                    skew: 5)
        let valid = link(first, expires: now + 60)
        #expect(verdict(valid, first) == "valid")
        #expect(verdict(valid + "&extra=1", first) == "valid")
        #expect(verdict(valid.replacingOccurrences(of: "clip", with: "clap"), first) == "token_invalid")
        #expect(verdict(valid.replacingOccurrences(of: "expires=\(now + 60)", with: "expires=\(now + 61)"), first) == "token_invalid")
        #expect(verdict(valid.replacingOccurrences(of: "kid=k1", with: "kid=k9"), first) == "token_invalid")
        #expect(verdict(String(valid.dropLast()) + (valid.last == "A" ? "B" : "A"), first) == "token_invalid")
        #expect(verdict("/media/protected/clip.mp4", first) == "token_missing")
        #expect(verdict(nil, first) == "token_missing")
        #expect(verdict(valid.replacingOccurrences(of: "sig=", with: "sig=!!"), first) == "token_invalid")
        // Another spelling of the same expiry would be a second link for one signature.
        for spelling in ["%2B\(now + 60)", "+\(now + 60)", "0\(now + 60)", "00\(now + 60)", "%20\(now + 60)", "\(now + 60)%20",
                         "\(now + 60).0", "%D9%A1\(now + 60)", "%EF%BC%91\(now + 60)", "-\(now + 60)", "0x6B49D25C", ""] {
            #expect(verdict(valid.replacingOccurrences(of: "expires=\(now + 60)", with: "expires=\(spelling)"), first) == "token_invalid", "\(spelling)")
        }
        // A token parameter named twice is refused, whichever copy is the valid one.
        for repeated in ["expires=\(now + 60)", "expires=1", "kid=k1", "kid=k9", "sig=x", "%73ig=x"] {
            #expect(verdict(valid + "&" + repeated, first) == "token_invalid", "\(repeated)")
        }
        #expect(verdict(valid + "&other=1&other=2", first) == "valid", "other parameters may repeat")
        #expect(TokenVerifier.canonicalExpires("1800000060") == 1_800_000_060)
        #expect(TokenVerifier.canonicalExpires("0") == 0)
        #expect(TokenVerifier.canonicalExpires("999999999999") == 999_999_999_999)
        for bad in ["", "+1", "-1", "01", " 1", "1 ", "1000000000000", "１", "١", "1e3", "1_000"] {
            #expect(TokenVerifier.canonicalExpires(bad) == nil, "\(bad)")
        }
        #expect(verdict(valid, first, at: now + 64) == "valid", "within the skew")
        #expect(verdict(valid, first, at: now + 66) == "token_expired")

        let rotated = try VideoFixtures.configuration(VideoFixtures.hmacCDN(name: "p", address: "/media/protected",
                                                                            keys: [("k2", true, false), ("k1", false, false)]), skew: 5)
        #expect(rotated.cdns[0].signingKey.id == "k2")
        #expect(verdict(valid, rotated) == "valid", "the old key still verifies until it is retired")
        #expect(verdict(link(rotated, expires: now + 60), rotated) == "valid")
        let retired = try VideoFixtures.configuration(VideoFixtures.hmacCDN(name: "p", address: "/media/protected",
                                                                            keys: [("k2", true, false), ("k1", false, true)]), skew: 5)
        #expect(verdict(valid, retired) == "token_key_retired")
        #expect(verdict(link(retired, expires: now + 60), retired) == "valid")

        let bound = try VideoFixtures.configuration(
            VideoFixtures.hmacCDN(name: "p", address: "/media/protected", keys: [("k1", true, false)], extra: #","bindClientIp": true"#))
        let boundLink = link(bound, expires: now + 60, ip: "203.0.113.9")
        #expect(verdict(boundLink, bound, ip: "203.0.113.9") == "valid")
        #expect(verdict(boundLink, bound, ip: "203.0.113.10") == "token_invalid")
    }

    @Test("a bad CDN file is refused with the field at fault, and never a secret")
    func configurationProblems() {
        let secret = "do-not-print-this-secret-value"
        let cases: [(json: String, expected: String)] = [
            ("[]", "not a JSON object"),
            (#"{"cdns": 3}"#, "cdns: expected a list"),
            (#"{"cdns": [], "lifetime": 3}"#, "lifetime: unknown field"),
            (#"{"cdns": [{"name": "a", "address": "/x", "keys": [{"id": "k", "secret": "short"}]}]}"#, "cdns[0].keys[0].secret: must be at least 16 bytes"),
            (#"{"cdns": [{"name": "a", "address": "/x", "scheme": "rot13", "keys": [{"id": "k", "secret": "\#(secret)"}]}]}"#, "cdns[0].scheme: expected one of"),
            (#"{"cdns": [{"name": "a", "address": "ftp://x", "keys": [{"id": "k", "secret": "\#(secret)"}]}]}"#, "cdns[0].address: expected an http(s) URL"),
            (#"{"cdns": [{"name": "a", "address": "https://x/a b", "keys": [{"id": "k", "secret": "\#(secret)"}]}]}"#, "cdns[0].address"),
            (#"{"cdns": [{"name": "a", "address": "/x", "keys": [{"id": "k", "secret": "\#(secret)"}, {"id": "j", "secret": "\#(secret)"}]}]}"#, "mark exactly one key"),
            (#"{"cdns": [{"name": "a", "address": "/x", "keys": [{"id": "k", "secret": "\#(secret)", "active": true, "retired": true}]}]}"#, "a retired key cannot be the active one"),
            (#"{"cdns": [{"name": "a", "address": "/x", "keys": [{"id": "k", "secret": "\#(secret)", "retierd": true}]}]}"#, "cdns[0].keys[0].retierd: unknown field"),
            (#"{"cdns": [{"name": "a", "address": "/x", "keys": [{"id": "k", "secret": "\#(secret)"}]}, {"name": "b", "address": "/y", "keys": [{"id": "k", "secret": "\#(secret)"}]}]}"#, "key id 'k' is used twice"),
            (#"{"cdns": [{"name": "a", "address": "/x", "scheme": "nginx-secure-link", "bindClientIp": true, "keys": [{"id": "k", "secret": "\#(secret)"}]}]}"#, "only hmac-sha256 can bind"),
            (#"{"lifetimeSeconds": 0, "cdns": []}"#, "lifetimeSeconds: expected a whole number from 1"),
            (#"{"skewSeconds": true, "cdns": []}"#, "skewSeconds: expected a whole number"),
        ]
        for (json, expected) in cases {
            do {
                _ = try CDNConfiguration.parse(Data(json.utf8))
                Issue.record("accepted: \(json)")
            } catch {
                #expect(error.problem.contains(expected), "\(error.problem) for \(json)")
                #expect(!error.problem.contains(secret))
            }
        }
    }

    @Test("a CDN file with defaults and overrides, and the built-in local CDN")
    func configurationDefaults() throws {
        let configuration = try CDNConfiguration.parse(Data(#"""
            {"skewSeconds": 2, "cdns": [
              {"name": "a", "address": "https://cdn.example.com/media/", "keys": [{"id": "k", "secret": "0123456789abcdef"}]},
              {"name": "b", "address": "/media/secure", "scheme": "nginx-secure-link", "lifetimeSeconds": 60,
               "keys": [{"id": "s", "secret": "0123456789abcdef"}]},
              {"name": "c", "address": "http://legacy.example.com", "scheme": "md5-legacy", "keys": [{"id": "l", "secret": "0000"}]}
            ]}
            """#.utf8))
        #expect(configuration.cdns.map(\.scheme) == [.hmacSHA256, .nginxSecureLink, .md5Legacy])
        #expect(configuration.cdns[0].address == "https://cdn.example.com/media")
        #expect(configuration.cdns[0].addressPath == "/media")
        #expect(configuration.cdns[0].lifetimeSeconds == 3600)
        #expect(configuration.cdns[1].lifetimeSeconds == 60)
        #expect(configuration.cdns[2].addressPath == "")
        #expect(configuration.skewSeconds == 2)
        #expect(Set(configuration.verificationKeys.keys) == ["k"])

        let local = try CDNConfiguration.load(SettingsReader(environment: ["MARQUEE_SECURE_LINK_SECRET": "0123456789abcdefgh"]))
        #expect(local.cdns.map(\.address) == ["/media/secure"])
        #expect(local.cdns.map(\.scheme) == [.nginxSecureLink])
        #expect(try CDNConfiguration.load(SettingsReader(environment: [:])).cdns.isEmpty)
        #expect(throws: SettingsError.self) { try CDNConfiguration.load(SettingsReader(environment: ["MARQUEE_CDNS_FILE": "/nonexistent/cdns.json"])) }
    }

    @Test("sources: paths nginx would normalise or cut are refused; others are percent-encoded in the URL")
    func sourcePaths() {
        for bad in ["clip.mp4", "/a/../b", "/a?b", "/a#b", "//a", "/a//b", "/a/", "/./a", "/a/."] {
            #expect(Video.srcProblem(bad) != nil, "\(bad)")
        }
        for good in ["/a.mp4", "/dir/clip-1_2~3.mp4", "/with space.mp4", "/vidéo.mp4", "/.hidden"] {
            #expect(Video.srcProblem(good) == nil, "\(good)")
        }
        #expect(URLPath.encoded("/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4") == "/Big_Buck_Bunny_1080p_surround_FrostWire.com.mp4")
        #expect(URLPath.encoded("/with space+é.mp4") == "/with%20space%2B%C3%A9.mp4")
    }

    @Test("X-Forwarded-For counts only from trusted proxies, read from the right")
    func clientAddress() throws {
        let none = ClientAddress.noProxies
        #expect(none.resolve(remoteAddress: "198.51.100.1", forwardedFor: "203.0.113.7") == "198.51.100.1")
        let trusted = try ClientAddress.load(SettingsReader(environment: ["MARQUEE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"]))
        #expect(trusted.resolve(remoteAddress: "127.0.0.1", forwardedFor: "203.0.113.7") == "203.0.113.7")
        #expect(trusted.resolve(remoteAddress: "127.0.0.1", forwardedFor: "1.2.3.4, 203.0.113.7, 10.1.2.3") == "203.0.113.7")
        #expect(trusted.resolve(remoteAddress: "127.0.0.1", forwardedFor: "10.0.0.1, 10.0.0.2") == "10.0.0.1")
        #expect(trusted.resolve(remoteAddress: "127.0.0.1", forwardedFor: "garbage") == "127.0.0.1")
        #expect(trusted.resolve(remoteAddress: "198.51.100.1", forwardedFor: "203.0.113.7") == "198.51.100.1")
        #expect(trusted.resolve(remoteAddress: "::1", forwardedFor: "2001:db8:0:0::1") == "2001:db8::1")
        #expect(throws: SettingsError.self) {
            try ClientAddress.load(SettingsReader(environment: ["MARQUEE_TRUSTED_PROXIES": "10.0.0.0/33"]))
        }
    }
}
