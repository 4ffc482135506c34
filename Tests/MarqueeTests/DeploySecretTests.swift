import Foundation
import Testing
@testable import Marquee

/// Secrets stay out of command lines and error messages. deploy/run is traced end to end in
/// DeployRunTests; deploy/install, which needs a whole system, is traced in Tests/lifecycle/run.
@Suite("Secrets in scripts and settings")
struct DeploySecretTests {
    static let value = "do-not-echo-0123456789abcdef"

    @Test("nginx-render, deploy/run and deploy/install refuse a secret on their command line, without echoing it")
    func refusedInArgv() throws {
        let directory = TestPaths.temporaryDirectory("secret-argv")
        defer { try? FileManager.default.removeItem(at: directory) }
        // deploy/install runs as root and would change this machine: the last argument is one it
        // does not know, so that it stops while parsing whatever happens to the first.
        let cases: [(script: String, arguments: [String])] = [
            ("deploy/nginx-render", ["--out", directory.appendingPathComponent("out").path, "--secure-link-secret", Self.value, "--no-check"]),
            ("deploy/nginx-render", ["--out", directory.appendingPathComponent("out").path, "--secure-link-secret=\(Self.value)", "--no-check"]),
            ("deploy/run", ["--state-dir", directory.appendingPathComponent("state").path, "--secure-link-secret", Self.value]),
            ("deploy/install", ["--secure-link-secret", Self.value, "--stop-parsing-here"]),
            ("deploy/install", ["--secure-link-secret=\(Self.value)", "--stop-parsing-here"]),
        ]
        for (index, entry) in cases.enumerated() {
            let process = try ChildProcess("argv-\(index)", executable: "/bin/bash", arguments: [TestPaths.script(entry.script)] + entry.arguments,
                                           logDirectory: directory)
            let status = process.waitForExit(timeout: .seconds(30))
            #expect(status != nil && status != 0, "\(entry.script) \(entry.arguments)")
            #expect(process.log.contains("visible in ps"), "\(entry.script): \(process.log)")
            #expect(!process.log.contains(Self.value), "\(entry.script) echoed the secret: \(process.log)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("state").path), "deploy/run stopped before making state")
    }

    @Test("no script or test support hands nginx-render a secret in argv")
    func noSecretArgumentInScripts() throws {
        let files = ["deploy/run", "deploy/install", "deploy/bench", "deploy/test", "Tests/lifecycle/run", "Tests/MarqueeTests/Support/Stack.swift"]
        for file in files {
            let text = try String(contentsOfFile: TestPaths.script(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.hasPrefix("#"), !trimmed.hasPrefix("//"),
                      let range = line.range(of: "--secure-link-secret") else { continue }
                let refusal = line.contains("die ")
                #expect(line[range.upperBound...].hasPrefix("-file") || refusal, "\(file):\(number + 1) passes a secret in argv: \(line)")
            }
        }
    }

    @Test("a setting's error never quotes a secret's value", arguments: [
        ("MARQUEE_SECURE_LINK_SECRET", "short-3f9a1c"),
        ("MARQUEE_SECURE_LINK_SECRET", "with space do-not-echo-0123456789abcdef"),
        ("MARQUEE_ADMIN_TOKEN", "tok-8e2b41"),
        ("MARQUEE_TMDB_API_KEY", "do-not-echo-0123456789abcdef!"),
        ("MARQUEE_TMDB_TOKEN", "tab\tdo-not-echo-0123456789abcdef"),
    ])
    func settingErrors(variable: String, bad: String) throws {
        let directory = TestPaths.temporaryDirectory("secret-settings")
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try ChildProcess("config-check", executable: TestPaths.marquee, arguments: ["config", "check"],
                                     environment: [variable: bad, "MARQUEE_STORE_DIR": directory.appendingPathComponent("store").path],
                                     logDirectory: directory)
        #expect(check.waitForExit(timeout: .seconds(20)) == 78)
        #expect(check.log.contains("invalid \(variable)"), "\(check.log)")
        #expect(!check.log.contains(bad), "the error quotes the secret: \(check.log)")
        #expect(!check.log.contains(String(bad.suffix(12))), "the error quotes part of the secret: \(check.log)")
    }

    @Test("the typed readers quote a plain setting's bad value but not a secret's")
    func typedReaders() {
        let secret = "MARQUEE_TEST_SECRET"
        let reader = SettingsReader(environment: [secret: Self.value, "MARQUEE_PLAIN": "not-a-number"])
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return ""
        }
        let messages = [
            message { _ = try reader.int(secret, default: 1, range: 1...2) },
            message { _ = try reader.seconds(secret, default: .seconds(1), range: 1...2) },
            message { _ = try reader.bool(secret, default: false) },
            message { _ = try reader.choice(secret, default: Settings.LogLevelSetting.info) },
            message { _ = try reader.url(secret, default: "") },
        ]
        for text in messages {
            #expect(text.hasPrefix("invalid \(secret)"), "\(text)")
            #expect(!text.lowercased().contains(Self.value), "\(text)")
        }
        #expect(message { _ = try reader.int("MARQUEE_PLAIN", default: 1, range: 1...2) }.contains("'not-a-number'"))
    }
}
