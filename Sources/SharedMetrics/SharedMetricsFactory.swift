import Atomics
import CoreMetrics
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// A swift-metrics backend whose figures every process of a pool can read: each process
/// writes into its own slot file of one directory (see `MetricsSlot`), and `PoolMetrics`
/// sums the files. Bootstrap it once per process, before anything makes a metric, so that
/// the libraries' metrics and the application's land in the same files.
///
/// Counters and floating-point counters are counters (`_total` is added to a name without
/// it); timers are histograms in seconds; aggregating recorders are histograms; meters and
/// non-aggregating recorders are gauges of this process, reported with its pid while it lives.
/// `reset()` of a counter is ignored: a pool-wide counter only grows.
public final class SharedMetricsFactory: MetricsFactory, Sendable {
    /// Agreed for request and upstream latencies: 50 µs to 5 s.
    public static let defaultBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1, 0.25, 0.5, 1, 2.5, 5]
    /// More slots than any pool runs processes at once; a process that finds none runs without metrics.
    public static let defaultSlotLimit = 128

    public let directory: String
    private let slot: MetricsSlot
    private let buckets: [String: [Double]]
    private let series = NIOLockedValueBox<[String: MetricsSlot.Record]>([:])

    /// Takes a slot in `directory`; nil when `slotLimit` live processes hold every slot.
    /// `buckets` gives histogram bounds by metric name; others get `defaultBuckets`.
    public init?(directory: String, buckets: [String: [Double]] = [:], slotLimit: Int = defaultSlotLimit) throws(MetricsError) {
        guard let slot = try MetricsSlot.claim(in: directory, limit: slotLimit) else { return nil }
        self.directory = directory
        self.slot = slot
        self.buckets = buckets
        var known: [String: MetricsSlot.Record] = [:]
        for record in slot.records() { known[record.key] = record }
        series.withLockedValue { $0 = known }
    }

    /// The slot file this process writes.
    public var path: String { slot.path }

    /// The cells of a series, created on first use; a full file gives cells of this process's
    /// memory, counted nowhere, rather than failing the caller.
    private func cells(_ kind: MetricsSlot.Kind, _ key: String, count: Int, initial: [UInt64] = []) -> UnsafeMutableRawPointer {
        series.withLockedValue { series in
            if let record = series[key], record.kind == kind, record.cellCount == count {
                return slot.base + record.cells
            }
            // A key reused with another shape (a histogram's bounds changed) gets a new series
            // under a marked key, which readers skip.
            let stored = series[key] == nil ? key : "\(key)\u{1}\(count)"
            if let record = series[stored] { return slot.base + record.cells }
            guard let record = slot.append(kind: kind, key: stored, cellCount: count, initial: initial) else {
                let orphan = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 8)
                orphan.initializeMemory(as: UInt64.self, repeating: 0, count: count)
                return orphan
            }
            series[stored] = record
            return slot.base + record.cells
        }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        let key = SeriesKey.make(name: SeriesKey.counterName(label), dimensions: dimensions)
        return SharedCounter(cells(.counter, key, count: 1))
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler {
        let key = SeriesKey.make(name: SeriesKey.counterName(label), dimensions: dimensions)
        return SharedFloatCounter(cells(.floatCounter, key, count: 1))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        let name = SeriesKey.sanitized(label)
        guard aggregate else { return SharedGauge(cells(.gauge, SeriesKey.make(name: name, dimensions: dimensions), count: 1)) }
        return histogram(name, dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        SharedGauge(cells(.gauge, SeriesKey.make(name: SeriesKey.sanitized(label), dimensions: dimensions), count: 1))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        var name = SeriesKey.sanitized(label)
        if !name.hasSuffix("_seconds") { name += "_seconds" }
        return histogram(name, dimensions)
    }

    private func histogram(_ name: String, _ dimensions: [(String, String)]) -> SharedHistogram {
        let bounds = buckets[name] ?? Self.defaultBuckets
        let count = bounds.count * 2 + 2
        let cells = cells(.histogram, SeriesKey.make(name: name, dimensions: dimensions), count: count,
                          initial: bounds.map(\.bitPattern))
        return SharedHistogram(cells, bounds: bounds)
    }

    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
}

private func atomicCell(_ pointer: UnsafeMutableRawPointer) -> UnsafeAtomic<UInt64> {
    UnsafeAtomic(at: pointer.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
}

/// Adds `amount` to the Double whose bits are in `cell`.
private func add(_ amount: Double, to cell: UnsafeAtomic<UInt64>) {
    var current = cell.load(ordering: .relaxed)
    while true {
        let next = (Double(bitPattern: current) + amount).bitPattern
        let (exchanged, original) = cell.weakCompareExchange(expected: current, desired: next, ordering: .relaxed)
        if exchanged { return }
        current = original
    }
}

final class SharedCounter: CounterHandler, @unchecked Sendable {
    private let cell: UnsafeAtomic<UInt64>
    init(_ pointer: UnsafeMutableRawPointer) { cell = atomicCell(pointer) }
    func increment(by amount: Int64) { cell.wrappingIncrement(by: UInt64(bitPattern: amount), ordering: .relaxed) }
    func reset() {}
}

final class SharedFloatCounter: FloatingPointCounterHandler, @unchecked Sendable {
    private let cell: UnsafeAtomic<UInt64>
    init(_ pointer: UnsafeMutableRawPointer) { cell = atomicCell(pointer) }
    func increment(by amount: Double) { add(amount, to: cell) }
    func reset() {}
}

final class SharedGauge: RecorderHandler, MeterHandler, @unchecked Sendable {
    private let cell: UnsafeAtomic<UInt64>
    init(_ pointer: UnsafeMutableRawPointer) { cell = atomicCell(pointer) }
    func record(_ value: Int64) { set(Double(value)) }
    func record(_ value: Double) { set(value) }
    func set(_ value: Int64) { set(Double(value)) }
    func set(_ value: Double) { cell.store(value.bitPattern, ordering: .relaxed) }
    func increment(by amount: Double) { add(amount, to: cell) }
    func decrement(by amount: Double) { add(-amount, to: cell) }
}

/// Bucket counts are not cumulative in the file (one increment per observation); the
/// reader accumulates them. The count is their sum, so it always agrees with the buckets.
final class SharedHistogram: RecorderHandler, TimerHandler, @unchecked Sendable {
    private let counts: UnsafeMutableRawPointer
    private let sum: UnsafeAtomic<UInt64>
    private let bounds: [Double]
    private let nanosecondBounds: [Int64]

    init(_ cells: UnsafeMutableRawPointer, bounds: [Double]) {
        self.bounds = bounds
        nanosecondBounds = bounds.map { Int64(($0 * 1e9).rounded()) }
        counts = cells + bounds.count * 8
        sum = atomicCell(cells + (bounds.count * 2 + 1) * 8)
    }

    private func bump(_ bucket: Int) {
        atomicCell(counts + bucket * 8).wrappingIncrement(ordering: .relaxed)
    }

    func record(_ value: Int64) { record(Double(value)) }

    func record(_ value: Double) {
        var bucket = 0
        while bucket < bounds.count && value > bounds[bucket] { bucket += 1 }
        bump(bucket)
        add(value, to: sum)
    }

    func recordNanoseconds(_ duration: Int64) {
        var bucket = 0
        while bucket < nanosecondBounds.count && duration > nanosecondBounds[bucket] { bucket += 1 }
        bump(bucket)
        add(Double(duration) / 1e9, to: sum)
    }
}
