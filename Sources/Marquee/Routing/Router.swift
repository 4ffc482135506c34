import FastCGI

public typealias Handler = @Sendable (inout Request) throws -> FastCGIResponse

/// Matches method and path. Patterns are literal segments and `{name}` parameters; a
/// trailing slash is part of the pattern. A known path with another method answers 405.
/// Paths are matched as given: the worker gets nginx's decoded `$uri`, so a parameter is
/// decoded once already and is never decoded again.
public struct Router: Sendable {
    /// Runs before a route's handler and refuses by throwing, e.g. a `CallerRule`.
    public typealias Admission = @Sendable (Request) throws -> Void

    struct Route: Sendable {
        var method: String
        var pattern: String
        var segments: [Substring]
        var handler: Handler
    }

    private var exact: [String: [String: Route]] = [:]
    /// Keyed by the lowercased path; tried only when no exact route matches.
    private var caseInsensitive: [String: [String: Route]] = [:]
    private var parameterised: [Route] = []
    private var groupAdmission: Admission?

    public init() {}

    /// Every route that `register` adds runs `admission` first.
    public mutating func group(admitting admission: @escaping Admission, _ register: (inout Router) -> Void) {
        let outer = groupAdmission
        if let outer {
            groupAdmission = { request in
                try outer(request)
                try admission(request)
            }
        } else {
            groupAdmission = admission
        }
        register(&self)
        groupAdmission = outer
    }

    public mutating func add(_ method: String, _ pattern: String, admitting admission: Admission? = nil, _ handler: @escaping Handler) {
        let route = Route(method: method, pattern: pattern, segments: pattern.split(separator: "/", omittingEmptySubsequences: false),
                          handler: guarded(handler, by: admission))
        if pattern.contains("{") {
            parameterised.append(route)
        } else {
            exact[pattern, default: [:]][method] = route
        }
    }

    /// `handler` behind the enclosing group's admission and the route's own.
    private func guarded(_ handler: @escaping Handler, by admission: Admission?) -> Handler {
        let checks = [groupAdmission, admission].compactMap { $0 }
        guard !checks.isEmpty else { return handler }
        return { request in
            for check in checks { try check(request) }
            return try handler(&request)
        }
    }

    public mutating func get(_ pattern: String, admitting admission: Admission? = nil, _ handler: @escaping Handler) {
        add("GET", pattern, admitting: admission, handler)
    }
    public mutating func post(_ pattern: String, admitting admission: Admission? = nil, _ handler: @escaping Handler) {
        add("POST", pattern, admitting: admission, handler)
    }
    public mutating func put(_ pattern: String, admitting admission: Admission? = nil, _ handler: @escaping Handler) {
        add("PUT", pattern, admitting: admission, handler)
    }
    public mutating func delete(_ pattern: String, admitting admission: Admission? = nil, _ handler: @escaping Handler) {
        add("DELETE", pattern, admitting: admission, handler)
    }

    /// A literal path that matches in any letter case, for clients of servers that matched
    /// so (Express); `pattern` is the route's name in logs. The group's admission applies as
    /// to any other route.
    public mutating func addCaseInsensitive(_ method: String, _ pattern: String, admitting admission: Admission? = nil,
                                            _ handler: @escaping Handler) {
        let route = Route(method: method, pattern: pattern, segments: [], handler: guarded(handler, by: admission))
        caseInsensitive[Self.asciiLowercased(pattern), default: [:]][method] = route
    }

    /// ASCII letters only, as nginx's `~*` locations compare: no other character may fold
    /// into a route's spelling (the Kelvin sign into `k`) and reach it past nginx's rules.
    static func asciiLowercased(_ path: String) -> String {
        guard path.utf8.contains(where: { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else { return path }
        return String(decoding: path.utf8.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Every registered route as (method, pattern), case-insensitive ones by their pattern;
    /// the OpenAPI description's paths are checked against it.
    public var routes: [(method: String, pattern: String)] {
        let fixed = exact.values.flatMap { $0.values } + caseInsensitive.values.flatMap { $0.values }
        return (fixed + parameterised).map { (method: $0.method, pattern: $0.pattern) }
    }

    public enum Match {
        case found(Handler, route: String, parameters: [String: String])
        case methodNotAllowed(route: String, allowed: [String])
        case notFound
    }

    public func match(method: String, path: String) -> Match {
        let effectiveMethod = method == "HEAD" ? "GET" : method
        if let byMethod = exact[path] {
            if let route = byMethod[effectiveMethod] { return .found(route.handler, route: route.pattern, parameters: [:]) }
            return .methodNotAllowed(route: path, allowed: byMethod.keys.sorted())
        }
        if !caseInsensitive.isEmpty, let byMethod = caseInsensitive[Self.asciiLowercased(path)] {
            if let route = byMethod[effectiveMethod] { return .found(route.handler, route: route.pattern, parameters: [:]) }
            return .methodNotAllowed(route: byMethod.values.first!.pattern, allowed: byMethod.keys.sorted())
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var allowed: [String] = []
        var allowedRoute = ""
        for route in parameterised where route.segments.count == segments.count {
            guard let parameters = Self.bind(route.segments, to: segments) else { continue }
            if route.method == effectiveMethod { return .found(route.handler, route: route.pattern, parameters: parameters) }
            allowed.append(route.method)
            allowedRoute = route.pattern
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(route: allowedRoute, allowed: allowed.sorted())
    }

    private static func bind(_ pattern: [Substring], to segments: [Substring]) -> [String: String]? {
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(pattern, segments) {
            if expected.first == "{" && expected.last == "}" {
                guard !actual.isEmpty else { return nil }
                parameters[String(expected.dropFirst().dropLast())] = String(actual)
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }
}
