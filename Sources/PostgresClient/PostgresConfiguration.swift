import CLibPQ

/// Where and how to connect. Every connection of a `PostgresClient` is opened with these.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URI (`postgresql://user@host:5432/db?…`) or key=value string.
    public var url: String
    /// Overrides any password in `url`; read from a file by the caller, never logged.
    public var password: String?
    /// Set per connection in the startup packet (`options=-c statement_timeout=…`), never with
    /// SET, so nothing lingers in the session for PgBouncer's transaction mode to leak.
    /// The client also gives up on its own a second after it, should the server not answer.
    public var statementTimeout: Duration
    /// libpq's connect_timeout, in whole seconds (libpq treats less than 2 as 2).
    public var connectTimeout: Duration
    public var applicationName: String
    /// The wait before the first reconnect after a failure; it doubles up to `maxBackoff`.
    public var minBackoff: Duration
    public var maxBackoff: Duration

    public init(url: String, password: String? = nil, statementTimeout: Duration = .seconds(2),
                connectTimeout: Duration = .seconds(2), applicationName: String = "marquee",
                minBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(1)) {
        self.url = url
        self.password = password
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
        self.applicationName = applicationName
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
    }

    /// `url` with any password replaced by `***`, for logs and errors.
    public var redactedURL: String { Self.redact(url) }

    public static func redact(_ url: String) -> String {
        var text = url.replacing(#/password=[^&\s]+/#, with: "password=***")
        // postgresql://user:secret@host → postgresql://user:***@host
        if let scheme = text.firstRange(of: "://") {
            let rest = text[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"),
               let colon = rest[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        return text
    }

    /// The keyword/value pairs for `PQconnectdbParams`, `url` expanded first so that the
    /// pairs after it override it.
    public func connectionParameters() throws(PostgresError) -> [(String, String)] {
        var options = try existingOptions()
        let timeout = statementTimeout.components
        let milliseconds = timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000
        options += (options.isEmpty ? "" : " ") + "-c statement_timeout=\(max(1, milliseconds))"
        var parameters: [(String, String)] = [
            ("dbname", url),
            ("connect_timeout", String(max(1, connectTimeout.components.seconds))),
            ("options", options),
            ("application_name", applicationName),
            // A host that vanished (power, cable) is noticed by TCP keepalive, not never.
            ("keepalives_idle", "10"),
            ("keepalives_interval", "3"),
            ("keepalives_count", "3"),
        ]
        if let password { parameters.append(("password", password)) }
        return parameters
    }

    /// The `options` already in `url`, kept so that ours are added, not substituted.
    private func existingOptions() throws(PostgresError) -> String {
        var message: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(url, &message) else {
            let reason = message.map { String(cString: $0) } ?? "unparsable"
            PQfreemem(message)
            throw PostgresError(.other, message: "MARQUEE_DATABASE_URL is not a libpq connection string: \(reason.trimmingSuffixNewlines)")
        }
        defer { PQconninfoFree(parsed) }
        var option = parsed
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "options", let value = option.pointee.val {
                return String(cString: value)
            }
            option += 1
        }
        return ""
    }
}

extension String {
    var trimmingSuffixNewlines: String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}
