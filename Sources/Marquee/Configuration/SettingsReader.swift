import Configuration
import Foundation

/// Typed access to the MARQUEE_* variables: the process environment, overlaid by the
/// env file when one is named (so that a reload sees what the operator edited).
/// Every problem names the variable; no secret value is ever printed.
public struct SettingsReader: Sendable {
    private let reader: ConfigReader
    private let environment: [String: String]

    /// Variables whose values are never logged or echoed in an error.
    static let secretMarkers = ["TOKEN", "KEY", "SECRET", "PASSWORD"]

    public init(environment: [String: String]) {
        self.environment = environment
        self.reader = ConfigReader(provider: EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .dynamic { key, _ in SettingsReader.isSecret(key) }
        ))
    }

    /// The process environment, overlaid by the file named in MARQUEE_ENV_FILE if any.
    public static func current(processEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws(SettingsError) -> SettingsReader {
        var environment = processEnvironment
        if let path = processEnvironment["MARQUEE_ENV_FILE"], !path.isEmpty {
            let overlay: [String: String]
            do {
                overlay = try EnvironmentFile.parse(path: path)
            } catch {
                throw SettingsError(variable: "MARQUEE_ENV_FILE", problem: "cannot read \(path): \(error)")
            }
            environment.merge(overlay) { _, fromFile in fromFile }
        }
        return SettingsReader(environment: environment)
    }

    static func isSecret(_ variable: String) -> Bool {
        secretMarkers.contains { variable.contains($0) }
    }

    /// A value as an error may quote it: a secret's is never shown.
    static func shown(_ variable: String, _ value: String) -> String {
        isSecret(variable) ? "a value that is not shown (the variable holds a secret)" : "'\(value)'"
    }

    private static func key(_ variable: String) -> ConfigKey {
        ConfigKey(variable.lowercased().split(separator: "_").map(String.init))
    }

    public func string(_ variable: String) -> String? {
        reader.string(forKey: Self.key(variable), isSecret: Self.isSecret(variable)).flatMap { $0.isEmpty ? nil : $0 }
    }

    public func string(_ variable: String, default fallback: String) -> String {
        string(variable) ?? fallback
    }

    public func int(_ variable: String, default fallback: Int, range: ClosedRange<Int>) throws(SettingsError) -> Int {
        guard let text = string(variable) else { return fallback }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw SettingsError(variable: variable, problem: "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \(Self.shown(variable, text))")
        }
        return value
    }

    public func seconds(_ variable: String, default fallback: Duration, range: ClosedRange<Double>) throws(SettingsError) -> Duration {
        guard let text = string(variable) else { return fallback }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw SettingsError(variable: variable, problem: "expected seconds from \(range.lowerBound) to \(range.upperBound), got \(Self.shown(variable, text))")
        }
        return .milliseconds(Int64(value * 1000))
    }

    public func bool(_ variable: String, default fallback: Bool) throws(SettingsError) -> Bool {
        guard let text = string(variable)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw SettingsError(variable: variable, problem: "expected true or false, got \(Self.shown(variable, text))")
        }
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ variable: String, default fallback: T) throws(SettingsError) -> T where T.RawValue == String {
        guard let text = string(variable) else { return fallback }
        guard let value = T(rawValue: text.lowercased()) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw SettingsError(variable: variable, problem: "expected one of \(allowed), got \(Self.shown(variable, text))")
        }
        return value
    }

    public func url(_ variable: String, default fallback: String) throws(SettingsError) -> URL {
        let text = string(variable, default: fallback)
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw SettingsError(variable: variable, problem: "expected an http(s) URL, got \(Self.shown(variable, text))")
        }
        return url
    }

    /// Names of the MARQUEE_* variables that are set, for diagnostics.
    public var variableNames: [String] {
        environment.keys.filter { $0.hasPrefix("MARQUEE_") }.sorted()
    }
}

public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public var variable: String
    public var problem: String

    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "invalid \(variable): \(problem)" }
}
