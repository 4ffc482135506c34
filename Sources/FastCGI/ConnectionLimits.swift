/// What one worker allows the connections it keeps open between requests.
public struct ConnectionLimits: Sendable, Equatable {
    /// Connections held at once, idle, incomplete and busy together. Past it the oldest idle
    /// one is closed to admit a new one.
    public var maxConnections: Int
    /// An idle connection is closed after this; nginx should close its own first (its upstream
    /// `keepalive_timeout` below this), so that the two never race.
    public var idleTimeout: Duration
    /// How long a request's head (begin and params records) may take to arrive once its first
    /// byte did; a connection still short of it then is closed. It also bounds each read of a
    /// body that arrives while a thread reads it.
    public var readDeadline: Duration

    public init(maxConnections: Int = 1024, idleTimeout: Duration = .seconds(60), readDeadline: Duration = .seconds(3)) {
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.readDeadline = readDeadline
    }
}
