/// Why a call to an internet service failed, as the features map it to 502, 503 and 504.
public enum UpstreamError: Error, Equatable, Sendable, CustomStringConvertible {
    case timeout
    case connection(String)
    case status(Int)
    case tooLarge(limit: Int)
    case malformed(String)
    case rateLimited
    /// This worker already runs as many upstream calls as its bulkhead allows.
    case overloaded

    public var description: String {
        switch self {
        case .timeout: "timed out"
        case .connection(let reason): "connection failed: \(reason)"
        case .status(let status): "answered HTTP \(status)"
        case .tooLarge(let limit): "answered more than \(limit) bytes"
        case .malformed(let reason): "answered a malformed body: \(reason)"
        case .rateLimited: "is rate-limiting us"
        case .overloaded: "too many upstream calls in flight in this worker"
        }
    }

    /// The error a client gets for it: generic on purpose. `description` names hosts, NIO
    /// errors and body details, which belong in the log, never in an answer.
    public var httpError: HTTPError {
        switch self {
        case .timeout: HTTPError(.upstreamTimeout, "the upstream service did not answer in time")
        case .overloaded: HTTPError(.overloaded, "too many upstream lookups in flight; retry shortly",
                                    headers: [(name: "Retry-After", value: "1")])
        case .connection: HTTPError(.upstreamError, "the upstream service could not be reached")
        case .status, .rateLimited: HTTPError(.upstreamError, "the upstream service answered with an error")
        case .tooLarge, .malformed: HTTPError(.upstreamError, "the upstream service gave an answer that cannot be used")
        }
    }
}
