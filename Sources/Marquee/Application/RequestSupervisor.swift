import FastCGI
import Logging
import NIOConcurrencyHelpers
import Synchronization

/// Watches the requests in flight, as php-fpm does its children: a request past the slow
/// threshold is logged once while it still runs (the slow-request line); one past the time
/// limit is answered 504 for its stuck thread; and a thread still stuck at twice the limit
/// asks for the worker to be recycled, since a thread cannot be taken back from a call that
/// never returns.
final class RequestSupervisor: Sendable {
    private struct Running {
        var exchange: FastCGIExchange
        var method: String
        var path: String
        var requestId: String?
        var started: ContinuousClock.Instant
        var loggedSlow = false
        var answered = false
    }

    private let running = NIOLockedValueBox<[Int: Running]>([:])
    private let nextTicket = Atomic<Int>(0)
    private let recycleRequested = Atomic<Bool>(false)

    /// Whether a thread stayed stuck past twice the time limit.
    var mustRecycle: Bool { recycleRequested.load(ordering: .acquiring) }

    /// `requestId` is the one the request's answer and log line carry, already checked.
    func begin(_ request: FastCGIRequest, method: String, path: String, requestId: String?) -> Int {
        let ticket = nextTicket.wrappingAdd(1, ordering: .relaxed).newValue
        let entry = Running(exchange: request.exchange, method: method, path: path, requestId: requestId, started: .now)
        running.withLockedValue { $0[ticket] = entry }
        return ticket
    }

    /// Forgets the request; true when the supervisor already answered it.
    func end(_ ticket: Int) -> Bool {
        running.withLockedValue { $0.removeValue(forKey: ticket)?.answered ?? false }
    }

    /// Requests still running past `limit`.
    func overdue(limit: Duration) -> Int {
        let now = ContinuousClock.now
        return running.withLockedValue { running in
            // Counted in place: health asks on every call, and a filtered copy is an allocation.
            var count = 0
            for entry in running.values where now - entry.started >= limit { count += 1 }
            return count
        }
    }

    /// One look at the requests in flight; the worker runs it a few times a second.
    func round(timeout: Duration, slow: Duration, logger: Logger) {
        let now = ContinuousClock.now
        var slowOnes: [Running] = []
        var late: [Running] = []
        var stuck: [Running] = []
        running.withLockedValue { running in
            for (ticket, entry) in running {
                let elapsed = now - entry.started
                if elapsed >= slow && !entry.loggedSlow {
                    running[ticket]?.loggedSlow = true
                    slowOnes.append(entry)
                }
                if elapsed >= timeout && !entry.answered {
                    running[ticket]?.answered = true
                    late.append(entry)
                }
                if elapsed >= timeout * 2 { stuck.append(entry) }
            }
        }
        for entry in slowOnes {
            logger.warning("slow request", metadata: Self.metadata(entry, now))
        }
        for entry in late {
            let answer = HTTPError(.requestTimeout, "the request took longer than the worker's time limit; retry later")
            if entry.exchange.answerEarly(answer.response) {
                logger.error("request over the time limit answered 504", metadata: Self.metadata(entry, now))
            }
        }
        if let first = stuck.first, !recycleRequested.exchange(true, ordering: .acquiringAndReleasing) {
            var metadata = Self.metadata(first, now)
            metadata["stuck"] = "\(stuck.count)"
            logger.critical("request thread stuck past twice the time limit: recycling the worker", metadata: metadata)
        }
    }

    private static func metadata(_ entry: Running, _ now: ContinuousClock.Instant) -> Logger.Metadata {
        let elapsed = now - entry.started
        let millis = Int(elapsed.components.seconds) * 1000 + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        var metadata: Logger.Metadata = ["method": "\(entry.method)", "path": "\(entry.path)", "ms": .stringConvertible(millis)]
        if let requestId = entry.requestId { metadata[Request.requestIdKey] = .string(requestId) }
        return metadata
    }
}
