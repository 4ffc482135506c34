import Foundation
import Yams

/// A JSON value, decoded from an answer or converted from the YAML description, compared by a
/// small JSON Schema validator: the keywords the description uses, nothing more.
enum JSONTree: Equatable, Decodable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONTree])
    case object([String: JSONTree])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONTree].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONTree].self)) }
    }

    /// What Yams loads: Swift scalars, arrays and mappings.
    init(yaml value: Any?) {
        switch value {
        case nil, is NSNull: self = .null
        case let value as Bool: self = .bool(value)
        case let value as Int: self = .int(value)
        case let value as Double: self = .double(value)
        case let value as String: self = .string(value)
        case let value as [Any]: self = .array(value.map { JSONTree(yaml: $0) })
        case let value as [String: Any]: self = .object(value.mapValues { JSONTree(yaml: $0) })
        case let value as [AnyHashable: Any]:
            self = .object(Dictionary(uniqueKeysWithValues: value.map { ("\($0.key)", JSONTree(yaml: $0.value)) }))
        default: self = .string("\(value!)")
        }
    }

    subscript(key: String) -> JSONTree? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    var string: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    var object: [String: JSONTree]? {
        guard case .object(let value) = self else { return nil }
        return value
    }

    var array: [JSONTree]? {
        guard case .array(let value) = self else { return nil }
        return value
    }
}

/// `openapi/marquee.yaml`, loaded once: its operations, their answers' schemas, and the check
/// every end-to-end answer goes through (`conformanceProblem`).
struct OpenAPIDescription: Sendable {
    let root: JSONTree

    static let file = TestPaths.repository.appendingPathComponent("openapi/marquee.yaml")

    static let shared: OpenAPIDescription = {
        do {
            return try OpenAPIDescription(yaml: String(contentsOf: file, encoding: .utf8))
        } catch {
            fatalError("openapi/marquee.yaml does not load: \(error)")
        }
    }()

    init(yaml: String) throws {
        root = JSONTree(yaml: try Yams.load(yaml: yaml))
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options"]

    /// Every operation: method (upper case), path template, the operation object.
    var operations: [(method: String, path: String, operation: JSONTree)] {
        (root["paths"]?.object ?? [:]).flatMap { path, item in
            Self.methods.compactMap { method in item[method].map { (method.uppercased(), path, $0) } }
        }
    }

    /// The template that `path` (no query) instantiates: literal segments equal, `{x}` any
    /// non-empty segment.
    func template(for path: String) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let templates = (root["paths"]?.object ?? [:]).keys
        if templates.contains(path) { return path }
        return templates.first { template in
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count, template.contains("{") else { return false }
            return zip(parts, segments).allSatisfy { part, segment in
                part.hasPrefix("{") ? !segment.isEmpty : part == segment
            }
        }
    }

    func resolve(_ node: JSONTree) -> JSONTree {
        guard let reference = node["$ref"]?.string, reference.hasPrefix("#/") else { return node }
        var current: JSONTree? = root
        for part in reference.dropFirst(2).split(separator: "/") { current = current?[String(part)] }
        return resolve(current ?? .null)
    }

    var errorSchema: JSONTree { resolve(.object(["$ref": .string("#/components/schemas/Error")])) }

    /// Why this answer disagrees with the description, or nil. Only JSON answers are checked
    /// against schemas; an answer of a path or method the description does not have must at
    /// least be an error in the shared shape when it is an error.
    func conformanceProblem(method: String, target: String, status: Int, contentType: String?, body: Data) -> String? {
        let isJSON = contentType?.lowercased().hasPrefix("application/json") == true
        guard isJSON, !body.isEmpty, method != "HEAD" else { return nil }
        let value: JSONTree
        do {
            value = try JSONDecoder().decode(JSONTree.self, from: body)
        } catch {
            return "\(method) \(target) → \(status): the body is not JSON: \(String(decoding: body.prefix(200), as: UTF8.self))"
        }
        let path = Self.normalised(String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]))
        let lowered = path.lowercased()
        let found = template(for: path) ?? (root["paths"]?[lowered]?["x-case-insensitive"] == .bool(true) ? lowered : nil)
        guard let template = found, let operation = root["paths"]?[template]?[method.lowercased()] else {
            guard status >= 400 else { return nil }
            let problems = validate(value, against: errorSchema)
            return problems.isEmpty ? nil : "\(method) \(target) → \(status), an error outside the description: \(problems.joined(separator: "; "))"
        }
        guard let response = operation["responses"]?[String(status)].map(resolve) else {
            return "\(method) \(template) answered \(status), which the description does not list: \(String(decoding: body.prefix(300), as: UTF8.self))"
        }
        guard let schema = response["content"]?["application/json"]?["schema"] else {
            return "\(method) \(template) answered \(status) as JSON, which the description does not list for that status"
        }
        let problems = validate(value, against: schema)
        guard problems.isEmpty else {
            return "\(method) \(template) → \(status) drifts from the description: \(problems.joined(separator: "; ")); body \(String(decoding: body.prefix(300), as: UTF8.self))"
        }
        return nil
    }

    /// nginx's view of a path: percent-decoded once, repeated slashes and `.` segments resolved.
    static func normalised(_ path: String) -> String {
        let decoded = path.removingPercentEncoding ?? path
        var segments: [Substring] = []
        let parts = decoded.split(separator: "/", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let last = index == parts.count - 1
            if part == "." || part == ".." {
                if part == "..", segments.count > 1 { segments.removeLast() }
                if last { segments.append("") }
                continue
            }
            if part.isEmpty && index > 0 && !last { continue }
            segments.append(part)
        }
        return segments.joined(separator: "/")
    }

    // MARK: The JSON Schema subset

    func validate(_ value: JSONTree, against schemaNode: JSONTree, at location: String = "$") -> [String] {
        let schema = resolve(schemaNode)
        guard case .object(let keywords) = schema else { return [] }
        var problems: [String] = []
        if let type = keywords["type"] {
            let allowed = type.array?.compactMap(\.string) ?? [type.string].compactMap { $0 }
            if !allowed.contains(where: { Self.matches(value, type: $0) }) {
                return ["\(location): \(Self.describe(value)) is not \(allowed.joined(separator: " or "))"]
            }
        }
        if let constant = keywords["const"], !Self.equal(value, constant) {
            problems.append("\(location): \(Self.describe(value)) is not \(Self.describe(constant))")
        }
        if let options = keywords["enum"]?.array, !options.contains(where: { Self.equal(value, $0) }) {
            problems.append("\(location): \(Self.describe(value)) is not one of \(options.map(Self.describe).joined(separator: ", "))")
        }
        if case .string(let text) = value {
            if case .int(let minimum)? = keywords["minLength"], text.count < minimum { problems.append("\(location): shorter than \(minimum)") }
            if case .int(let maximum)? = keywords["maxLength"], text.count > maximum { problems.append("\(location): longer than \(maximum)") }
            if let pattern = keywords["pattern"]?.string, text.range(of: pattern, options: .regularExpression) == nil {
                problems.append("\(location): \(Self.describe(value)) does not match \(pattern)")
            }
        }
        if let number = Self.number(value) {
            if let minimum = keywords["minimum"].flatMap(Self.number), number < minimum { problems.append("\(location): below \(minimum)") }
            if let maximum = keywords["maximum"].flatMap(Self.number), number > maximum { problems.append("\(location): above \(maximum)") }
        }
        if case .array(let items) = value {
            if case .int(let minimum)? = keywords["minItems"], items.count < minimum { problems.append("\(location): fewer than \(minimum) items") }
            if case .int(let maximum)? = keywords["maxItems"], items.count > maximum { problems.append("\(location): more than \(maximum) items") }
            if let itemSchema = keywords["items"] {
                for (index, item) in items.enumerated() { problems += validate(item, against: itemSchema, at: "\(location)[\(index)]") }
            }
        }
        if case .object(let members) = value {
            let properties = keywords["properties"]?.object ?? [:]
            for name in keywords["required"]?.array?.compactMap(\.string) ?? [] where members[name] == nil {
                problems.append("\(location): \(name) is required")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = properties[name] {
                    problems += validate(member, against: property, at: "\(location).\(name)")
                } else if let additional = keywords["additionalProperties"] {
                    if case .bool(false) = additional {
                        problems.append("\(location): \(name) is not in the description")
                    } else if case .object = additional {
                        problems += validate(member, against: additional, at: "\(location).\(name)")
                    }
                }
            }
        }
        if let all = keywords["allOf"]?.array {
            for part in all { problems += validate(value, against: part, at: location) }
        }
        if let any = keywords["anyOf"]?.array, !any.contains(where: { validate(value, against: $0, at: location).isEmpty }) {
            problems.append("\(location): matches none of anyOf")
        }
        if let one = keywords["oneOf"]?.array {
            let matching = one.filter { validate(value, against: $0, at: location).isEmpty }.count
            if matching != 1 { problems.append("\(location): \(Self.describe(value)) matches \(matching) of oneOf, not exactly one") }
        }
        if let not = keywords["not"], validate(value, against: not, at: location).isEmpty {
            problems.append("\(location): matches what `not` excludes")
        }
        return problems
    }

    private static func matches(_ value: JSONTree, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("integer", .int), ("number", .int), ("number", .double),
             ("string", .string), ("array", .array), ("object", .object): true
        case ("integer", .double(let number)): number.rounded() == number
        default: false
        }
    }

    private static func number(_ value: JSONTree) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    private static func equal(_ left: JSONTree, _ right: JSONTree) -> Bool {
        if let a = number(left), let b = number(right) { return a == b }
        return left == right
    }

    static func describe(_ value: JSONTree) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .int(let number): "\(number)"
        case .double(let number): "\(number)"
        case .string(let text): "\"\(text.prefix(80))\""
        case .array(let items): "an array of \(items.count)"
        case .object: "an object"
        }
    }
}
