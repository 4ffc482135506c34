import Crypto
import Foundation

/// `Authorization: Bearer $MARQUEE_ADMIN_TOKEN` for account and catalogue data: 401 without
/// a token, 403 with a wrong one, and 503 when the operator has not set a token at all.
public enum AdminAuthorization {
    public static func require(_ request: Request, services: Services) throws(HTTPError) {
        guard let expectedDigest = services.settings.adminTokenDigest else {
            throw HTTPError(.adminDisabled, "MARQUEE_ADMIN_TOKEN is not set, so admin routes are off")
        }
        guard let header = request.header("Authorization"), header.hasPrefix("Bearer ") else {
            throw HTTPError(.unauthorized, "send Authorization: Bearer <admin token>",
                            headers: [(name: "WWW-Authenticate", value: "Bearer")])
        }
        let given = header.dropFirst("Bearer ".count)
        // Digests have one length whatever the tokens', and every byte is compared.
        let givenDigest = Array(SHA256.hash(data: Data(given.utf8)))
        guard zip(givenDigest, expectedDigest).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw HTTPError(.forbidden, "the admin token is not valid")
        }
    }
}
