#if canImport(Glibc)
import Glibc
#endif

/// Every slot file of a metrics directory read at one moment and summed: counters and
/// histograms over every process that ever held a slot, gauges per live process.
///
/// Reading maps each file read-only and copies its cells: it takes no lock the writers
/// take, so a scrape costs the request threads nothing but the pages it reads.
public struct PoolMetrics: Sendable {
    public struct Histogram: Sendable, Equatable {
        public var bounds: [Double]
        /// Per bucket and then +Inf, not cumulative.
        public var counts: [UInt64]
        public var sum: Double

        public var count: UInt64 { counts.reduce(0, +) }

        /// The value below which `quantile` of the observations fall, interpolated within
        /// its bucket as Prometheus's histogram_quantile does; nil without observations.
        public func quantile(_ quantile: Double) -> Double? {
            let total = count
            guard total > 0 else { return nil }
            let rank = quantile * Double(total)
            var seen: UInt64 = 0
            for (index, bucketCount) in counts.enumerated() {
                let before = seen
                seen += bucketCount
                if Double(seen) >= rank && bucketCount > 0 {
                    guard index < bounds.count else { return bounds.last }
                    let lower = index == 0 ? 0 : bounds[index - 1]
                    return lower + (bounds[index] - lower) * (rank - Double(before)) / Double(bucketCount)
                }
            }
            return bounds.last
        }

        /// What was observed between `earlier` and this one.
        public func since(_ earlier: Histogram?) -> Histogram {
            guard let earlier, earlier.bounds == bounds else { return self }
            return Histogram(bounds: bounds, counts: zip(counts, earlier.counts).map { $0 &- $1 }, sum: sum - earlier.sum)
        }
    }

    public struct Process: Sendable, Equatable {
        public var pid: Int32
        public var slot: String
    }

    /// By key (`name{labels}`).
    public var counters: [String: Double] = [:]
    public var histograms: [String: Histogram] = [:]
    /// By key with the process's `pid` label added; live processes only.
    public var gauges: [String: Double] = [:]
    /// The processes that hold a slot now.
    public var processes: [Process] = []
    public var slotFiles = 0
    /// Series no process could store because its file was full.
    public var overflows: UInt64 = 0

    public init() {}

    public static func read(directory: String) -> PoolMetrics {
        var pool = PoolMetrics()
        for path in MetricsSlot.slotPaths(in: directory) {
            guard let slot = MetricsSlot.read(path) else { continue }
            pool.slotFiles += 1
            pool.overflows += slot.overflows
            let live = slot.isHeld
            let pid = slot.pid
            if live { pool.processes.append(Process(pid: pid, slot: path)) }
            for record in slot.records() where !record.key.contains("\u{1}") {
                switch record.kind {
                case .counter:
                    pool.counters[record.key, default: 0] += Double(slot.cell(record.cells).load(ordering: .relaxed))
                case .floatCounter:
                    pool.counters[record.key, default: 0] += Double(bitPattern: slot.cell(record.cells).load(ordering: .relaxed))
                case .gauge:
                    guard live else { continue }
                    let (name, labels) = SeriesKey.split(record.key)
                    let key = SeriesKey.join(name, SeriesKey.adding("pid", String(pid), to: labels))
                    pool.gauges[key] = Double(bitPattern: slot.cell(record.cells).load(ordering: .relaxed))
                case .histogram:
                    let n = (record.cellCount - 2) / 2
                    let load = { (index: Int) in slot.cell(record.cells + index * 8).load(ordering: .relaxed) }
                    let histogram = Histogram(bounds: (0..<n).map { Double(bitPattern: load($0)) },
                                              counts: (0...n).map { load(n + $0) },
                                              sum: Double(bitPattern: load(2 * n + 1)))
                    if var existing = pool.histograms[record.key] {
                        guard existing.bounds == histogram.bounds else { continue }
                        existing.counts = zip(existing.counts, histogram.counts).map { $0 &+ $1 }
                        existing.sum += histogram.sum
                        pool.histograms[record.key] = existing
                    } else {
                        pool.histograms[record.key] = histogram
                    }
                }
            }
        }
        return pool
    }

    /// The series of `name` with their labels, for counters and histograms alike.
    public func counters(named name: String) -> [(labels: [String: String], value: Double)] {
        counters.compactMap { key, value in
            let (seriesName, labels) = SeriesKey.split(key)
            return seriesName == name ? (Self.labels(labels), value) : nil
        }
    }

    public func histograms(named name: String) -> [(labels: [String: String], histogram: Histogram)] {
        histograms.compactMap { key, histogram in
            let (seriesName, labels) = SeriesKey.split(key)
            return seriesName == name ? (Self.labels(labels), histogram) : nil
        }
    }

    static func labels(_ text: String) -> [String: String] {
        var labels: [String: String] = [:]
        var rest = Substring(text)
        while let equals = rest.firstIndex(of: "=") {
            let name = String(rest[..<equals])
            if let value = SeriesKey.value(of: name, in: String(rest)) { labels[name] = value }
            // Skip past this pair's closing quote.
            var index = rest.index(after: equals)
            index = rest.index(after: index)
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\" { index = rest.index(after: index) }
                index = rest.index(after: index)
            }
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
            if rest.first == "," { rest = rest.dropFirst() }
        }
        return labels
    }
}
