import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The one HTTP client of a worker for internet services: pooled connections and TLS from
/// AsyncHTTPClient, a total deadline per call, one retry with jitter after a 5xx or a
/// connection error, TMDB-style 429 Retry-After, a cap on the body, and no redirects (a
/// redirect would fetch somewhere the allow-list never approved).
///
/// Calls block the request thread until the answer or the deadline; bulkheads bound how many
/// threads may wait so.
public final class UpstreamClient: Sendable {
    public struct Timeouts: Sendable {
        public var connect: Duration
        public var total: Duration

        public init(connect: Duration = .seconds(1), total: Duration = .seconds(3)) {
            self.connect = connect
            self.total = total
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    private let http: HTTPClient
    public let timeouts: Timeouts
    public let metrics = UpstreamMetrics()

    public init(timeouts: Timeouts) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .nanoseconds(timeouts.connect.nanoseconds), read: .nanoseconds(timeouts.total.nanoseconds))
        configuration.redirectConfiguration = .disallow
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeouts = timeouts
    }

    public func shutdown() {
        try? http.syncShutdown()
    }

    /// GETs `url`. Answers with any status below 500 but 429 (the caller reads 404 itself);
    /// throws for the rest once the retry is spent. `deadline` shortens the total timeout, so
    /// that a chain of calls can share one budget. `logger` is the caller's: for a request, it
    /// carries the request's id onto the lines about its calls.
    public func get(_ url: URL, upstream: String, headers: [(String, String)] = [], maxBytes: Int = 4 << 20,
                    deadline callerDeadline: ContinuousClock.Instant? = nil, logger: Logger) throws(UpstreamError) -> Response {
        let ownDeadline = ContinuousClock.now + timeouts.total
        let deadline = callerDeadline.map { min($0, ownDeadline) } ?? ownDeadline
        var lastError = UpstreamError.timeout
        for attempt in 1...2 {
            let pause: Duration
            let started = ContinuousClock.now
            let outcome = once(url, headers: headers, maxBytes: maxBytes, deadline: deadline)
            let took = ContinuousClock.now - started
            func log(_ result: String, status: Int? = nil, error: UpstreamError? = nil) {
                let failed = error != nil || (status ?? 0) >= 500 || status == 429
                guard failed || logger.logLevel <= .debug else { return }
                // The path, never the query: TMDB's api_key travels there.
                var metadata: Logger.Metadata = [
                    "upstream": .string(upstream), "host": .string(url.host ?? ""), "path": .string(url.path),
                    "attempt": .stringConvertible(attempt), "outcome": .string(result),
                    "ms": .stringConvertible(Int(took.nanoseconds / 1_000_000)),
                ]
                if let status { metadata["status"] = .stringConvertible(status) }
                if let error { metadata["error"] = .string(error.description) }
                if failed {
                    logger.warning("upstream call failed", metadata: metadata)
                } else {
                    logger.debug("upstream call", metadata: metadata)
                }
            }
            switch outcome {
            case .success(let answer) where answer.status == 429:
                metrics.record(upstream, "rate_limited", duration: took)
                log("rate_limited", status: answer.status)
                lastError = .rateLimited
                pause = answer.retryAfter ?? Self.jitter()
            case .success(let answer) where answer.status >= 500:
                metrics.record(upstream, "server_error", duration: took)
                log("server_error", status: answer.status)
                lastError = .status(answer.status)
                pause = Self.jitter()
            case .success(let answer):
                let result = answer.status >= 400 ? "client_error" : "ok"
                metrics.record(upstream, result, duration: took)
                log(result, status: answer.status)
                return Response(status: answer.status, body: answer.body)
            case .failure(let error):
                metrics.record(upstream, error.outcome, duration: took)
                log(error.outcome, error: error)
                guard case .connection = error else { throw error }
                lastError = error
                pause = Self.jitter()
            }
            guard attempt == 1, ContinuousClock.now + pause < deadline else { break }
            Thread.sleep(forTimeInterval: Double(pause.nanoseconds) / 1e9)
        }
        throw lastError
    }

    private static func jitter() -> Duration {
        .milliseconds(Int64.random(in: 50...150))
    }

    private struct Answer {
        var status: Int
        var body: [UInt8]
        var retryAfter: Duration?
    }

    private func once(_ url: URL, headers: [(String, String)], maxBytes: Int, deadline: ContinuousClock.Instant) -> Result<Answer, UpstreamError> {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return .failure(.timeout) }
        do {
            var request = try HTTPClient.Request(url: url.absoluteString, method: .GET)
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "marquee/\(MarqueeVersion.current)")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let accumulator = ResponseAccumulator(request: request, maxBodySize: maxBytes)
            let response = try http.execute(request: request, delegate: accumulator,
                                            deadline: .now() + .nanoseconds(remaining.nanoseconds)).wait()
            let body = response.body.map { Array($0.readableBytesView) } ?? []
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int64.init).map { Duration.seconds($0) }
            return .success(Answer(status: Int(response.status.code), body: body, retryAfter: retryAfter))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failure(error == .connectTimeout ? .connection("connect timed out") : .timeout)
        } catch is ResponseAccumulator.ResponseTooBigError {
            return .failure(.tooLarge(limit: maxBytes))
        } catch {
            // The host is for the log: NIO's errors do not always name it.
            return .failure(.connection("\(url.host ?? "no host"): \(error)"))
        }
    }
}

private extension UpstreamError {
    var outcome: String {
        switch self {
        case .timeout: "timeout"
        case .tooLarge: "too_large"
        default: "connection_error"
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
