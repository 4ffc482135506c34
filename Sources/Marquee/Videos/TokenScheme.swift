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
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Written out rather than through Data.base64EncodedString: two digests per minted link,
    /// and the Data round trip measured a tenth of the signing.
    static func encode(_ digest: some Sequence<UInt8>) -> String {
        let bytes = Array(digest)
        var output = [UInt8]()
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var chunk = UInt32(bytes[index]) << 16
            if count > 1 { chunk |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { chunk |= UInt32(bytes[index + 2]) }
            for position in 0...count {
                output.append(alphabet[Int(chunk >> UInt32(18 - 6 * position) & 63)])
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// nil for anything but unpadded base64url in its one spelling. Foundation ignores the
    /// unused low bits of the last character, so without the check a signature's last character
    /// had four spellings, each a valid link.
    static func decode(_ text: String) -> [UInt8]? {
        guard !text.contains(where: { $0 == "+" || $0 == "/" || $0 == "=" }) else { return nil }
        var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        guard let bytes = Data(base64Encoded: standard).map(Array.init), encode(bytes) == text else { return nil }
        return bytes
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
