import Foundation
import Testing
@testable import Marquee

/// Inputs that broke an invariant of the fuzz targets (fuzz/README.md), kept as examples.
@Suite("FuzzFindings")
struct FuzzFindingsTests {
    static let configuration = try! VideoFixtures.configuration(
        #"{"name": "edge", "address": "/media", "keys": [{"id": "k1", "secret": "\#(VideoFixtures.secret(for: "k1"))"}]}"#)

    /// FuzzTokenVerifier found it: a value starting with a combining mark fused with its `=`
    /// into one Character, so the check for a repeated token parameter read `kid=͙ex1` as a
    /// name and missed the second `kid`.
    @Test("a token parameter named twice is refused even when a value starts with a combining mark")
    func repeatedTokenBehindCombiningMark() {
        #expect(TokenVerifier.repeatsTokenParameter("die192%Boo1&kid=\u{359}ex1&k%roie1p&kid=k1&si%1"))
        #expect(TokenVerifier.repeatsTokenParameter("sig=\u{301}&sig=abc&kid=k1&expires=1"))
        #expect(!TokenVerifier.repeatsTokenParameter("expires=1800000600&kid=k1&sig=\u{301}abc&x=\u{301}"))
        let refusal = TokenVerifier().verify(originalURI: "/media/a.mp4?expires=1800000600&kid=\u{359}x&kid=k1&sig=abc",
                                             clientIp: "192.0.2.7", configuration: Self.configuration, nowSeconds: 1_800_000_000)
        #expect(refusal?.message == "the link names a token parameter twice")
    }

    /// FuzzTokenVerifier's "only what was signed verifies", on its seed with the signature's last
    /// character changed in its unused low bits: Foundation decoded it to the same bytes, so
    /// each signed link had four spellings that verified.
    @Test("a signature verifies only in the spelling it was minted in")
    func signatureRespelled() throws {
        let cdn = try #require(Self.configuration.cdns.first)
        let query = cdn.scheme.query(src: "/a.mp4", path: "/media/a.mp4", key: cdn.signingKey, expires: 1_800_000_600, clientIp: nil)
        let verifier = TokenVerifier()
        func verify(_ query: String) -> String {
            verifier.verify(originalURI: "/media/a.mp4?" + query, clientIp: "192.0.2.7", configuration: Self.configuration,
                            nowSeconds: 1_800_000_000)?.code.code ?? "valid"
        }
        #expect(verify(query) == "valid")
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = try #require(alphabet.firstIndex(of: query.last!))
        for variant in 1..<4 {
            #expect(verify(String(query.dropLast()) + String(alphabet[last ^ variant])) == "token_invalid", "variant \(variant)")
        }
        #expect(Base64URL.decode("QR") == nil)
        #expect(Base64URL.decode("QQ") == [0x41])
    }

    /// FuzzEnvironmentFile found `=1` set a variable named "". Its invariant then also covers what
    /// reading the parser for it showed: `=` or a quote followed by a combining mark is one
    /// Character, so the line `A=́x` was dropped whole and `B="́x"` kept its quotes.
    @Test("env-file lines without a name, and with a combining mark after = or a quote")
    func environmentFileNamesAndCombiningMarks() {
        #expect(EnvironmentFile.parse(text: "# comment\n; also a comment\n=1\nB  A = two words  \n").keys.sorted() == ["B  A"])
        let variables = EnvironmentFile.parse(text: "A=\u{301}x\nB=\"\u{301}x\"\n  = also\nC = plain \r\nD='q'\n")
        #expect(variables == ["A": "\u{301}x", "B": "\u{301}x", "C": "plain", "D": "q"])
    }
}
