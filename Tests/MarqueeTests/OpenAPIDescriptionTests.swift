import Foundation
import LMDBStore
@testable import Marquee
import Testing

/// openapi/marquee.yaml against what it describes: the router's routes, the error catalogue and
/// nginx's own error bodies, the README's route table, its own examples, and the copy a worker
/// serves.
@Suite("OpenAPI description")
struct OpenAPIDescriptionTests {
    let description = OpenAPIDescription.shared

    @Test("the router's routes are the description's paths and methods, and no other")
    func routesEqualPaths() throws {
        let directory = TestPaths.temporaryDirectory("openapi-routes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = try Settings(SettingsReader(environment: [
            "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path,
            "MARQUEE_STORE_MAX_MB": "64",
            "MARQUEE_GHIBLI_BASE_URL": "http://127.0.0.1:9",
            "MARQUEE_LOG_LEVEL": "error",
        ]))
        let services = Services(store: try Store.open(settings.storeOptions), settings: settings)
        var router = Router()
        for feature in try FeatureSet.make(services: services) { feature.register(in: &router) }
        let routed = Set(router.routes.map { "\($0.method) \($0.pattern)" })
        let described = Set(description.operations.filter { $0.operation["x-served-by"] == nil }.map { "\($0.method) \($0.path)" })
        #expect(routed.subtracting(described).sorted() == [], "routes the description lacks")
        #expect(described.subtracting(routed).sorted() == [], "described routes no worker serves")
        #expect(routed.count > 20)
    }

    /// Each code of the description's `ErrorCode` with its `x-status`.
    private var describedCodes: [String: Int] {
        var codes: [String: Int] = [:]
        for entry in description.root["components"]?["schemas"]?["ErrorCode"]?["oneOf"]?.array ?? [] {
            guard let code = entry["const"]?.string, case .int(let status)? = entry["x-status"] else {
                Issue.record("an ErrorCode entry without const and x-status: \(entry)")
                continue
            }
            #expect(codes[code] == nil, "\(code) is listed twice")
            codes[code] = status
        }
        return codes
    }

    /// The codes and statuses of the JSON bodies nginx answers itself.
    static func nginxCodes() throws -> [String: Int] {
        let snippets = TestPaths.repository.appendingPathComponent("nginx/snippets")
        let text = try FileManager.default.contentsOfDirectory(atPath: snippets.path).filter { $0.hasPrefix("marquee-error") }
            .map { try String(contentsOf: snippets.appendingPathComponent($0), encoding: .utf8) }.joined(separator: "\n")
        var codes: [String: Int] = [:]
        for match in text.matches(of: /return (\d+) '\{"error":\{"code":"([a-z_]+)"/) {
            codes[String(match.output.2)] = Int(match.output.1)!
        }
        return codes
    }

    @Test("every error code is listed once in the description, with the status the workers or nginx answer it with, both ways")
    func errorCodesAgree() throws {
        let described = describedCodes
        let nginx = try Self.nginxCodes()
        #expect(nginx.count >= 12, "nginx's error bodies: \(nginx)")
        var answered: [String: Int] = nginx
        for entry in ErrorCode.all {
            #expect(answered[entry.code].map { $0 == entry.status } ?? true, "\(entry.code) has two statuses")
            answered[entry.code] = entry.status
        }
        #expect(Set(ErrorCode.all.map(\.code)).count == ErrorCode.all.count, "the catalogue lists a code twice")
        #expect(Set(answered.keys).subtracting(described.keys).sorted() == [], "codes answered but not described")
        #expect(Set(described.keys).subtracting(answered.keys).sorted() == [], "codes described that nothing answers")
        for (code, status) in described where answered[code] != nil {
            #expect(answered[code] == status, "\(code): described as \(status), answered as \(answered[code]!)")
        }
    }

    @Test("every path in the README's route table is in the description, and every described path is in the table")
    func readmeTableAgrees() throws {
        let readme = try String(contentsOf: TestPaths.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme.components(separatedBy: "\n## HTTP API\n")[1].components(separatedBy: "\n## ")[0]
        #expect(section.contains("openapi/marquee.yaml"), "the HTTP API section points to the description")
        var listed = Set<String>()
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let route = line.split(separator: "|")[0]
            for match in route.matches(of: /`(?:(?:GET|POST|PUT|DELETE) )?(\/[^`?\s]*)[^`]*`/) {
                listed.insert(String(match.output.1))
            }
        }
        let described = Set(description.operations.map(\.path))
        #expect(listed.subtracting(described).sorted() == [], "README routes the description lacks")
        #expect(described.subtracting(listed).sorted() == [], "described paths the README's table lacks")
    }

    @Test("every example in the description validates against its own schema")
    func examplesValidate() {
        var checked = 0
        for (method, path, operation) in description.operations {
            var bodies: [(String, JSONTree?)] = []
            for (status, response) in operation["responses"]?.object ?? [:] {
                for (type, media) in description.resolve(response)["content"]?.object ?? [:] where type == "application/json" {
                    bodies.append(("\(method) \(path) \(status)", media))
                }
            }
            if let request = operation["requestBody"]?["content"]?["application/json"] {
                bodies.append(("\(method) \(path) request", request))
            }
            for (label, media) in bodies {
                guard let media, let schema = media["schema"] else { continue }
                var examples = [media["example"]].compactMap { $0 }
                examples += (media["examples"]?.object ?? [:]).values.compactMap { $0["value"] }
                for example in examples {
                    checked += 1
                    let problems = description.validate(example, against: schema)
                    #expect(problems == [], "\(label): \(problems)")
                }
            }
        }
        for (name, response) in description.root["components"]?["responses"]?.object ?? [:] {
            guard let media = response["content"]?["application/json"], let example = media["example"], let schema = media["schema"] else { continue }
            checked += 1
            #expect(description.validate(example, against: schema) == [], "response \(name)")
        }
        #expect(checked > 25)
    }

    @Test("the validator refuses what the schemas exclude", arguments: [
        #"{"error":{"code":"no_such_code","message":"x"}}"#,
        #"{"error":{"code":"not_found"}}"#,
        #"{"error":{"code":"not_found","message":"x"},"extra":1}"#,
        #"{"message":"x"}"#,
    ])
    func validatorRefuses(body: String) throws {
        let value = try JSONDecoder().decode(JSONTree.self, from: Data(body.utf8))
        #expect(description.validate(value, against: description.errorSchema) != [])
    }

    @Test("a worker serves the repository's description at GET /api/v1/openapi.yaml")
    func served() async throws {
        let stack = try await Stack("openapi-served", workers: 1)
        defer { stack.stop() }
        let answer = try await stack.client.get("/api/v1/openapi.yaml")
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "application/yaml")
        #expect(answer.body == (try Data(contentsOf: OpenAPIDescription.file)))
        #expect(answer.header("X-Content-Type-Options") == "nosniff")
    }
}
