import Foundation

/// Reads a systemd EnvironmentFile (`KEY=value` lines, `#` comments, optional quotes),
/// so that a reload applies what the operator changed without a restart.
enum EnvironmentFile {
    static func parse(path: String) throws -> [String: String] {
        try parse(text: String(contentsOfFile: path, encoding: .utf8))
    }

    /// Over Unicode scalars, not Characters: a combining mark right after `=` or a quote fuses
    /// with it into one Character, which hid the `=` (the line was dropped) or the quote.
    static func parse(text: String) -> [String: String] {
        var variables: [String: String] = [:]
        for rawLine in text.unicodeScalars.split(whereSeparator: isLineBreak) {
            let line = trimmed(rawLine)
            guard let first = line.first, first != "#", first != ";", let equals = line.firstIndex(of: "=") else { continue }
            let name = trimmed(line[..<equals])
            // systemd ignores an assignment without a name.
            guard !name.isEmpty else { continue }
            var value = trimmed(line[line.index(after: equals)...])
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = value.dropFirst().dropLast()
            }
            variables[String(Substring(name))] = String(Substring(value))
        }
        return variables
    }

    /// The line breaks of `Character.isNewline`.
    private static func isLineBreak(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0a...0x0d, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }

    private static func trimmed(_ text: Substring.UnicodeScalarView) -> Substring.UnicodeScalarView {
        let whitespace = CharacterSet.whitespaces
        guard let start = text.firstIndex(where: { !whitespace.contains($0) }),
              let end = text.lastIndex(where: { !whitespace.contains($0) }) else { return text[text.endIndex...] }
        return text[start...end]
    }
}
