import Crypto
import Foundation
import Mustache

/// Renders the movies page and the not-yet-loaded page from the templates in
/// `Movies/Templates`, read from the module's resource bundle once per worker.
struct MoviesPage: Sendable {
    private let library: MustacheLibrary
    /// The page loads nothing and runs no script: its one inline `<style>` block is allowed by
    /// its hash, taken from the template, so an edit to the style can never break the policy.
    /// Anything injected (a script, a style attribute, a form, a frame) is refused.
    let contentSecurityPolicy: String

    /// Loads and parses the templates. They ship inside the binary's resource bundle and the
    /// tests render them, so a failure here is a broken build, not a runtime condition.
    init() {
        StrictHTMLContentType.registerOnce()
        var library = MustacheLibrary()
        var styleHashes: [String] = []
        for name in ["movies", "unavailable"] {
            guard let url = Bundle.module.url(forResource: name, withExtension: "mustache", subdirectory: "Templates"),
                  let text = try? String(contentsOf: url, encoding: .utf8) else {
                preconditionFailure("the template Movies/Templates/\(name).mustache is missing from the resource bundle")
            }
            styleHashes += Self.inlineStyles(text).map { "'sha256-\(Data(SHA256.hash(data: Data($0.utf8))).base64EncodedString())'" }
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("the template Movies/Templates/\(name).mustache does not parse: \(error)")
            }
        }
        self.library = library
        contentSecurityPolicy = "default-src 'none'; style-src \(styleHashes.isEmpty ? "'none'" : styleHashes.joined(separator: " ")); "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }

    /// The text of each `<style>` element, exactly as the page will carry it.
    static func inlineStyles(_ html: String) -> [String] {
        var styles: [String] = []
        var rest = html[...]
        while let open = rest.range(of: "<style>"), let close = rest.range(of: "</style>", range: open.upperBound..<rest.endIndex) {
            styles.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return styles
    }

    func render(_ document: MoviesDocument) -> [UInt8] {
        Array((library.render(PageView(document), withTemplate: "movies") ?? "").utf8)
    }

    func renderUnavailable(retryAfterSeconds: Int) -> [UInt8] {
        Array((library.render(["retryAfter": retryAfterSeconds], withTemplate: "unavailable") ?? "").utf8)
    }
}

/// What the template reads: display strings prepared here, so that the template only places them.
private struct PageView {
    struct Film {
        var id: String
        var title: String
        var originalTitle: String
        var year: String
        var director: String
        var score: String
        var hasPeople: Bool
        var people: [Person]
    }

    struct Person {
        var name: String
    }

    var count: Int
    var refreshedAt: String
    var refreshedAtText: String
    var stale: Bool
    var staleSince: String
    var staleSinceText: String
    var films: [Film]

    init(_ document: MoviesDocument) {
        let machine = ISO8601DateFormatter()
        let human = DateFormatter()
        human.locale = Locale(identifier: "en_US_POSIX")
        human.timeZone = TimeZone(identifier: "UTC")
        human.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        count = document.movies.count
        refreshedAt = machine.string(from: document.refreshedAt)
        refreshedAtText = human.string(from: document.refreshedAt)
        stale = document.stale
        staleSince = document.staleSince.map(machine.string(from:)) ?? ""
        staleSinceText = document.staleSince.map(human.string(from:)) ?? ""
        films = document.movies.map { movie in
            Film(id: movie.id, title: movie.title, originalTitle: movie.originalTitle, year: String(movie.releaseDate.prefix(4)),
                 director: movie.director, score: "\(movie.rtScore)%", hasPeople: !movie.people.isEmpty,
                 people: movie.people.map { Person(name: $0.name) })
        }
    }
}

/// HTML escaping per Unicode scalar. Mustache's own HTML escaping compares whole characters,
/// so a quote followed by a combining mark (`"\u{301}`) is one character that is not a quote
/// and passes unescaped, and could end an attribute value.
struct StrictHTMLContentType: MustacheContentType {
    static let name = "STRICT_HTML"

    private static let registration: Void = MustacheContentTypes.register(StrictHTMLContentType(), named: name)

    /// The templates name this type in a pragma, which is looked up when they are parsed.
    static func registerOnce() { _ = registration }

    func escapeText(_ text: String) -> String {
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": escaped.append(contentsOf: "&lt;".unicodeScalars)
            case ">": escaped.append(contentsOf: "&gt;".unicodeScalars)
            case "&": escaped.append(contentsOf: "&amp;".unicodeScalars)
            case "\"": escaped.append(contentsOf: "&quot;".unicodeScalars)
            case "'": escaped.append(contentsOf: "&#39;".unicodeScalars)
            default: escaped.append(scalar)
            }
        }
        return String(escaped)
    }
}
