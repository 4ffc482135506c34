import FuzzSupport
@testable import Marquee

/// The env-file reader: no crash on any text; every name is non-empty and trimmed, no name or
/// value spans lines, and the variables written back as `NAME="value"` lines read the same.
runFuzzer { bytes in
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    let variables = EnvironmentFile.parse(text: text)
    for (name, value) in variables {
        check(!name.isEmpty, "an empty name from \(text.debugDescription)")
        check(name == name.trimmingCharacters(in: .whitespaces), "the name \(name.debugDescription) is not trimmed")
        check(!name.unicodeScalars.contains("=") && !name.contains(where: \.isNewline) && !value.contains(where: \.isNewline),
              "\(name.debugDescription)=\(value.debugDescription) from \(text.debugDescription)")
    }
    let written = variables.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: "\n")
    let again = EnvironmentFile.parse(text: written)
    check(again == variables, "\(text.debugDescription) read as \(variables), written as \(written.debugDescription) read as \(again)")
}
