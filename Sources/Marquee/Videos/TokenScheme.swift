import Crypto
import Foundation

/// How a CDN's links are signed. Each scheme turns a source path into the query that the
/// edge checks before it serves a byte.
public enum TokenScheme: String, Sendable, CaseIterable {
    /// `expires`, `kid`, `sig`: sig = base64url(HMAC-SHA256(key, "<expires>\n<path>[\n<client ip>]")).
    /// Checked by `GET /api/v1/tokens/verify` behind nginx's auth_request.
    case hmacSHA256 = "hmac-sha256"
    /// `md5`, `expires`: md5 = base64url(MD5("<expires><path> <secret>")), what stock nginx's
    /// `secure_link_md5 "$secure_link_expires$uri <secret>"` checks on its own.
    case nginxSecureLink = "nginx-secure-link"
    /// `token` = md5hex(src + "?secret=" + key): the earlier service's links, which never
    /// expire and are the same for everyone. For migration only.
    case md5Legacy = "md5-legacy"

    var index: Int {
        switch self {
        case .hmacSHA256: 0
        case .nginxSecureLink: 1
        case .md5Legacy: 2
        }
    }

    /// The query of a signed link to `src`, whose path at the edge is `path`.
    func query(src: String, path: String, key: CDNConfiguration.Key, expires: Int, clientIp: String?) -> String {
        switch self {
        case .hmacSHA256:
            var mac = key.hmac
            mac.update(data: Self.hmacMessage(path: path, expires: expires, clientIp: clientIp))
            let signature = mac.finalize()
            return "expires=\(expires)&kid=\(key.id)&sig=\(Base64URL.encode(signature))"
        case .nginxSecureLink:
            return "md5=\(Self.secureLinkHash(path: path, expires: expires, secret: key.secret))&expires=\(expires)"
        case .md5Legacy:
            return "token=\(Self.legacyToken(src: src, secret: key.secret))"
        }
    }

    static func hmacMessage(path: String, expires: Int, clientIp: String?) -> [UInt8] {
        var message = Array(String(expires).utf8)
        message.append(UInt8(ascii: "\n"))
        message.append(contentsOf: path.utf8)
        if let clientIp {
            message.append(UInt8(ascii: "\n"))
            message.append(contentsOf: clientIp.utf8)
        }
        return message
    }

    static func secureLinkHash(path: String, expires: Int, secret: [UInt8]) -> String {
        var input = Array(String(expires).utf8)
        input.append(contentsOf: path.utf8)
        input.append(UInt8(ascii: " "))
        input.append(contentsOf: secret)
        return Base64URL.encode(Insecure.MD5.hash(data: input))
    }

    public static func legacyToken(src: String, secret: [UInt8]) -> String {
        var input = Array(src.utf8)
        input.append(contentsOf: "?secret=".utf8)
        input.append(contentsOf: secret)
        return Hex.encode(Insecure.MD5.hash(data: input))
    }
}

/// Base64 with the URL alphabet (`-`, `_`) and no padding, as nginx's secure_link and
/// URL query values want it.
enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Array(Data(bytes).base64EncodedData())
        while text.last == UInt8(ascii: "=") { text.removeLast() }
        for index in text.indices {
            if text[index] == UInt8(ascii: "+") { text[index] = UInt8(ascii: "-") } else if text[index] == UInt8(ascii: "/") { text[index] = UInt8(ascii: "_") }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// nil for anything but unpadded base64url.
    static func decode(_ text: String) -> [UInt8]? {
        guard !text.contains(where: { $0 == "+" || $0 == "/" || $0 == "=" }) else { return nil }
        var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var output = [UInt8]()
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 15)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}
