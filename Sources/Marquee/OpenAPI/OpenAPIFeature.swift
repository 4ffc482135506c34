import FastCGI
import Foundation

/// `GET /api/v1/openapi.yaml`: the description of this API, `openapi/marquee.yaml` of the
/// repository as built into the resource bundle, so a worker answers the description of the
/// very routes it serves.
public struct OpenAPIFeature: Feature {
    public let name = "openapi"

    public static let path = "/api/v1/openapi.yaml"
    static let contentType = "application/yaml"

    /// Read once per worker; a bundle without it is a broken build, not a runtime condition.
    public static let document: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "marquee", withExtension: "yaml"),
              let data = try? Data(contentsOf: url) else {
            preconditionFailure("OpenAPI/marquee.yaml is missing from the resource bundle")
        }
        return Array(data)
    }()

    public init() {}

    public func register(in router: inout Router) {
        let body = Self.document
        router.get(Self.path) { _ in
            FastCGIResponse(status: 200, headers: [(name: "Content-Type", value: Self.contentType)], body: body)
        }
    }
}
