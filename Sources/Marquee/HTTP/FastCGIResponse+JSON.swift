import FastCGI
import Foundation

extension FastCGIResponse {
    static let jsonContentType = (name: "Content-Type", value: "application/json")

    private static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// Encodes `value` as the JSON body.
    public static func json(_ status: Int, _ value: some Encodable, headers: [(name: String, value: String)] = []) -> FastCGIResponse {
        do {
            let body = try makeEncoder().encode(value)
            return FastCGIResponse(status: status, headers: withContentType(jsonContentType, headers), body: Array(body))
        } catch {
            return FastCGIResponse(
                status: 500,
                headers: [jsonContentType],
                body: Array(#"{"error":{"code":"internal","message":"the answer could not be encoded"}}"#.utf8)
            )
        }
    }

    /// A body that is already JSON, such as one read from the store.
    public static func jsonBytes(_ status: Int, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: withContentType(jsonContentType, headers), body: body)
    }

    /// With room for the two headers the worker adds to every answer, so that adding them
    /// does not copy the array again.
    static func withContentType(_ contentType: (name: String, value: String),
                                _ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var all: [(name: String, value: String)] = []
        all.reserveCapacity(headers.count + 3)
        all.append(contentType)
        all.append(contentsOf: headers)
        return all
    }

    public static func html(_ status: Int, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: withContentType((name: "Content-Type", value: "text/html; charset=utf-8"), headers), body: body)
    }

    public static let noContent = FastCGIResponse(status: 204)
}
