import FastCGI
import Foundation

/// An error answered as JSON: `{"error":{"code":"…","message":"…"}}`, plus any `details`.
public struct HTTPError: Error, Sendable {
    public var status: Int
    public var code: String
    public var message: String
    public var details: [String: JSONValue]
    public var headers: [(name: String, value: String)]

    public init(_ status: Int, _ code: String, _ message: String, details: [String: JSONValue] = [:], headers: [(name: String, value: String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public static func notFound(_ message: String = "no such resource") -> HTTPError {
        HTTPError(404, "not_found", message)
    }

    public static func badRequest(_ code: String, _ message: String, details: [String: JSONValue] = [:]) -> HTTPError {
        HTTPError(400, code, message, details: details)
    }

    /// A write found no room in the store. 507, not 503: a retry does not help until the
    /// operator frees room or raises MARQUEE_STORE_MAX_MB.
    public static let storeFull = HTTPError(507, "store_full", "the store has no room for this write; try again once room is freed")

    /// The system of record (MARQUEE_DATABASE_URL) did not answer within its statement
    /// timeout, or cannot be reached; the worker reconnects on its own.
    public static let databaseUnavailable = HTTPError(503, "database_unavailable", "the database cannot be reached; try again shortly",
                                                      headers: [(name: "Retry-After", value: "1")])

    public var response: FastCGIResponse {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        error.merge(details) { current, _ in current }
        return .json(status, JSONValue.object(["error": .object(error)]), headers: headers)
    }
}

/// A JSON document built in code, for answers whose shape varies (errors, status).
public enum JSONValue: Sendable, Encodable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// The member `key` of an object; nil for anything else.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }
}
