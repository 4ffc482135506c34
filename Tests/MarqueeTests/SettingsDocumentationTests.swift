import Foundation
import Testing

/// The settings a worker reads, the README's settings table and deploy/marquee.env.example
/// name the same variables.
@Suite("Settings documentation")
struct SettingsDocumentationTests {
    /// Documented but rightly absent from the example file.
    static let notInExample: Set<String> = ["MARQUEE_ENV_FILE", "MARQUEE_INSTANCE"]

    /// Every `"MARQUEE_…"` string literal of Sources/: the names the code reads.
    static func namesInCode() throws -> Set<String> {
        let sources = TestPaths.repository.appendingPathComponent("Sources")
        let pattern = try Regex(#""(MARQUEE_[A-Z0-9_]+)""#)
        var names: Set<String> = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            guard file.pathExtension == "swift" else { continue }
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: pattern) {
                if let name = match.output[1].substring { names.insert(String(name)) }
            }
        }
        return names
    }

    /// The names in the first column of the table under "## Configuration".
    static func namesInReadme() throws -> Set<String> {
        let text = try String(contentsOfFile: TestPaths.script("README.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "\n## Configuration\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        let pattern = try Regex(#"`(MARQUEE_[A-Z0-9_]+)`"#)
        var names: Set<String> = []
        for line in section.split(separator: "\n") where line.hasPrefix("| `MARQUEE_") {
            let firstCell = line.dropFirst().prefix { $0 != "|" }
            for match in firstCell.matches(of: pattern) {
                if let name = match.output[1].substring { names.insert(String(name)) }
            }
        }
        return names
    }

    /// The names assigned, commented out or not, in deploy/marquee.env.example.
    static func namesInExample() throws -> Set<String> {
        let text = try String(contentsOfFile: TestPaths.script("deploy/marquee.env.example"), encoding: .utf8)
        let pattern = try Regex(#"^#?\s*(MARQUEE_[A-Z0-9_]+)="#)
        var names: Set<String> = []
        for line in text.split(separator: "\n") {
            if let match = line.firstMatch(of: pattern), let name = match.output[1].substring { names.insert(String(name)) }
        }
        return names
    }

    @Test("the code, the README's settings table and deploy/marquee.env.example name the same settings")
    func threeAgree() throws {
        let code = try Self.namesInCode()
        let readme = try Self.namesInReadme()
        let example = try Self.namesInExample()
        #expect(code.count > 20 && readme.count > 20 && example.count > 20, "the parsers found \(code.count), \(readme.count), \(example.count) names")

        func list(_ names: Set<String>) -> String { names.isEmpty ? "none" : names.sorted().joined(separator: ", ") }
        let problems = [
            ("read by the code but missing from the README table", code.subtracting(readme)),
            ("in the README table but read nowhere in Sources", readme.subtracting(code)),
            ("in the README table but missing from deploy/marquee.env.example", readme.subtracting(example).subtracting(Self.notInExample)),
            ("in deploy/marquee.env.example but missing from the README table", example.subtracting(readme)),
            ("in deploy/marquee.env.example but read nowhere in Sources", example.subtracting(code)),
        ].filter { !$0.1.isEmpty }
        #expect(problems.isEmpty, Comment(rawValue: problems.map { "\($0.0): \(list($0.1))" }.joined(separator: "\n")))
    }
}
