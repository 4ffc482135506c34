import CoreMetrics
import Crypto
import Synchronization

/// Checks an `hmac-sha256` link for nginx's auth_request: the URI the client asked for comes
/// in X-Original-URI, and the answer is 204 or 403. The signature is compared in constant
/// time; the expiry may be passed by the configured skew; retired and unknown keys are refused.
final class TokenVerifier: Sendable {
    private let accepted = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)
    /// By result: `valid`, or the refusal's code.
    private let poolVerifications = Dictionary(uniqueKeysWithValues: ["valid", "token_missing", "token_invalid", "token_expired",
                                                                      "token_key_retired", "other"].map {
        ($0, Counter(label: MetricNames.tokenVerifications, dimensions: [("result", $0)]))
    })

    struct Refusal: Error, Equatable {
        var code: ErrorCode
        var message: String
    }

    func verify(originalURI: String?, clientIp: String, configuration: CDNConfiguration, nowSeconds: Int) -> Refusal? {
        let refusal = check(originalURI: originalURI, clientIp: clientIp, configuration: configuration, nowSeconds: nowSeconds)
        (poolVerifications[refusal?.code.code ?? "valid"] ?? poolVerifications["other"])?.increment()
        if refusal == nil {
            accepted.add(1, ordering: .relaxed)
        } else {
            refused.add(1, ordering: .relaxed)
        }
        return refusal
    }

    private func check(originalURI: String?, clientIp: String, configuration: CDNConfiguration, nowSeconds: Int) -> Refusal? {
        guard let originalURI, !originalURI.isEmpty else {
            return Refusal(code: .tokenMissing, message: "no X-Original-URI: this route answers nginx's auth_request")
        }
        let parts = originalURI.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let query = parts.count == 2 ? QueryString.decode(String(parts[1])) : [:]
        guard let expiresText = query["expires"], let kid = query["kid"], let sigText = query["sig"] else {
            return Refusal(code: .tokenMissing, message: "the link carries no expires, kid and sig")
        }
        guard !Self.repeatsTokenParameter(parts[1]) else {
            return Refusal(code: .tokenInvalid, message: "the link names a token parameter twice")
        }
        // Decoded as nginx decodes $uri, without turning + into a space.
        guard let path = QueryString.percentDecoded(parts[0].replacing("+", with: "%2B")),
              let expires = Self.canonicalExpires(expiresText),
              let signature = Base64URL.decode(sigText) else {
            return Refusal(code: .tokenInvalid, message: "the link's token is malformed")
        }
        guard let entry = configuration.verificationKeys[kid] else {
            return Refusal(code: .tokenInvalid, message: "the link's key is unknown")
        }
        guard !entry.key.retired else {
            return Refusal(code: .tokenKeyRetired, message: "the link was signed with a retired key")
        }
        let message = TokenScheme.hmacMessage(path: path, expires: expires, clientIp: entry.bindsClientIp ? clientIp : nil)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: entry.key.symmetricKey) else {
            return Refusal(code: .tokenInvalid, message: "the link's signature does not match")
        }
        // After the signature, so that an expiry is only reported for links this service made.
        guard nowSeconds <= expires + configuration.skewSeconds else {
            return Refusal(code: .tokenExpired, message: "the link has expired")
        }
        return nil
    }

    /// A link that names expires, kid or sig twice means one thing to a reader that takes the
    /// first (this one, nginx's `$arg_`) and another to one that takes the last: refused whole.
    /// Over the bytes, as `QueryString.decode` reads them: split as Characters, a combining mark
    /// after `&` or `=` fused with it and hid a second `kid`.
    static func repeatsTokenParameter(_ query: Substring) -> Bool {
        var seen: Set<String> = []
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
            guard let name = QueryString.percentDecoded(pair.prefix { $0 != UInt8(ascii: "=") }),
                  ["expires", "kid", "sig"].contains(name) else { continue }
            if !seen.insert(name).inserted { return true }
        }
        return false
    }

    /// `expires` exactly as the minter writes it: ASCII digits, no sign, no leading zero, at
    /// most 12. Any other spelling of the same number would be a second valid link for one signature.
    static func canonicalExpires(_ text: String) -> Int? {
        let digits = text.utf8
        guard (1...12).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              digits.first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
        return Int(text)
    }

    var figures: (accepted: Int, refused: Int) {
        (accepted.load(ordering: .relaxed), refused.load(ordering: .relaxed))
    }
}
