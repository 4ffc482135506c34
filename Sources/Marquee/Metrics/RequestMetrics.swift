import Atomics
import CoreMetrics

/// The request path's metrics: a counter per family, method and status class and a latency
/// histogram per family, each made on first use and then reached by index, so that a request
/// builds no string and takes no lock.
final class RequestMetrics: Sendable {
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"]
    static let statusClasses = ["2xx", "3xx", "4xx", "5xx"]

    private let counters: [ManagedAtomicLazyReference<Counter>]
    private let timers: [ManagedAtomicLazyReference<Timer>]
    private let inFlight = Meter(label: MetricNames.inFlight)
    let threadsBusy = Meter(label: MetricNames.threadsBusy)

    init() {
        counters = (0..<RouteFamily.allCases.count * Self.methods.count * Self.statusClasses.count).map { _ in .init() }
        timers = RouteFamily.allCases.map { _ in .init() }
    }

    func begin() {
        inFlight.increment()
    }

    func end(route: String, method: String, status: Int, nanoseconds: Int64) {
        inFlight.decrement()
        let family = RouteFamily(route: route)
        let methodIndex = Self.methodIndex(method)
        let statusIndex = min(3, max(0, status / 100 - 2))
        let index = (family.rawValue * Self.methods.count + methodIndex) * Self.statusClasses.count + statusIndex
        let counter = counters[index].load() ?? counters[index].storeIfNilThenLoad(
            Counter(label: MetricNames.requests, dimensions: [
                ("family", family.label), ("method", Self.methods[methodIndex]), ("status", Self.statusClasses[statusIndex]),
            ]))
        counter.increment()
        let timer = timers[family.rawValue].load() ?? timers[family.rawValue].storeIfNilThenLoad(
            Timer(label: MetricNames.requestDuration, dimensions: [("family", family.label)]))
        timer.recordNanoseconds(nanoseconds)
    }

    private static func methodIndex(_ method: String) -> Int {
        switch method {
        case "GET": 0
        case "HEAD": 1
        case "POST": 2
        case "PUT": 3
        case "DELETE": 4
        case "PATCH": 5
        case "OPTIONS": 6
        default: 7
        }
    }
}
