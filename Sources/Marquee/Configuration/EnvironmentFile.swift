import Foundation

/// Reads a systemd EnvironmentFile (`KEY=value` lines, `#` comments, optional quotes),
/// so that a reload applies what the operator changed without a restart.
enum EnvironmentFile {
    static func parse(path: String) throws -> [String: String] {
        try parse(text: String(contentsOfFile: path, encoding: .utf8))
    }

    static func parse(text: String) -> [String: String] {
        var variables: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#"), !line.hasPrefix(";"), let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            variables[name] = value
        }
        return variables
    }
}
