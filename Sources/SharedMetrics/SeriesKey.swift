/// A series' key in a slot file and on the page: `name` or `name{label="value",...}`, in
/// Prometheus's own text, so that reading needs no parsing but for histograms' `le`.
enum SeriesKey {
    static func make(name: String, dimensions: [(String, String)]) -> String {
        guard !dimensions.isEmpty else { return name }
        return name + "{" + labels(dimensions) + "}"
    }

    static func labels(_ dimensions: [(String, String)]) -> String {
        dimensions.map { "\(sanitized($0.0))=\"\(escaped($0.1))\"" }.joined(separator: ",")
    }

    static func counterName(_ label: String) -> String {
        let name = sanitized(label)
        return name.hasSuffix("_total") ? name : name + "_total"
    }

    /// Prometheus names allow `[a-zA-Z_:][a-zA-Z0-9_:]*`; anything else becomes `_`.
    static func sanitized(_ label: String) -> String {
        var out = ""
        for (index, scalar) in label.unicodeScalars.enumerated() {
            let letter = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || scalar == "_" || scalar == ":"
            let digit = scalar >= "0" && scalar <= "9"
            out.unicodeScalars.append(letter || (digit && index > 0) ? scalar : "_")
        }
        return out.isEmpty ? "_" : out
    }

    static func escaped(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// `name` and the label text between the braces ("" without labels).
    static func split(_ key: String) -> (name: String, labels: String) {
        guard let brace = key.firstIndex(of: "{"), key.hasSuffix("}") else { return (key, "") }
        return (String(key[..<brace]), String(key[key.index(after: brace)..<key.index(before: key.endIndex)]))
    }

    static func join(_ name: String, _ labels: String) -> String {
        labels.isEmpty ? name : "\(name){\(labels)}"
    }

    static func adding(_ label: String, _ value: String, to labels: String) -> String {
        let pair = "\(label)=\"\(escaped(value))\""
        return labels.isEmpty ? pair : "\(labels),\(pair)"
    }

    /// The value of `label` in a label text made by `labels(_:)`.
    static func value(of label: String, in labels: String) -> String? {
        var rest = Substring(labels)
        while let equals = rest.firstIndex(of: "=") {
            let name = rest[..<equals]
            var index = rest.index(equals, offsetBy: 2, limitedBy: rest.endIndex) ?? rest.endIndex
            var value = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\", rest.index(after: index) < rest.endIndex {
                    index = rest.index(after: index)
                    value.append(rest[index] == "n" ? "\n" : rest[index])
                } else {
                    value.append(rest[index])
                }
                index = rest.index(after: index)
            }
            if name == label { return value }
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return nil
    }
}
