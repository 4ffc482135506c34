/// A scrape's answer in the Prometheus text format 0.0.4: the pool's figures, the figures
/// the scraping process reads at scrape time (store sizes, queue depths), and each live
/// process's memory and descriptors from /proc.
public struct MetricsPage: Sendable {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private enum Kind: String { case counter, gauge, histogram }

    private struct Family {
        var kind: Kind
        /// Each series' lines (a histogram's buckets in order) by the series' key.
        var series: [String: [String]] = [:]
    }

    private var families: [String: Family] = [:]
    private let help: [String: String]

    /// `help` gives each metric's HELP text by name; others get a generic one.
    public init(help: [String: String] = [:]) {
        self.help = help
    }

    public mutating func add(_ pool: PoolMetrics) {
        for (key, value) in pool.counters { line(.counter, key, value) }
        for (key, value) in pool.gauges { line(.gauge, key, value) }
        for (key, histogram) in pool.histograms {
            let (name, labels) = SeriesKey.split(key)
            var family = families[name] ?? Family(kind: .histogram)
            guard family.kind == .histogram else { continue }
            var lines: [String] = []
            var cumulative: UInt64 = 0
            for (index, count) in histogram.counts.enumerated() {
                cumulative += count
                let bound = index < histogram.bounds.count ? Self.format(histogram.bounds[index]) : "+Inf"
                lines.append("\(SeriesKey.join(name + "_bucket", SeriesKey.adding("le", bound, to: labels))) \(cumulative)")
            }
            lines.append("\(SeriesKey.join(name + "_sum", labels)) \(Self.format(histogram.sum))")
            lines.append("\(SeriesKey.join(name + "_count", labels)) \(cumulative)")
            family.series[key] = lines
            families[name] = family
        }
        for process in pool.processes {
            let pid = [("pid", String(process.pid))]
            if let resident = ProcessFigures.residentBytes(process.pid) {
                gauge("process_resident_memory_bytes", pid, Double(resident))
            }
            if let descriptors = ProcessFigures.openDescriptors(process.pid) {
                gauge("process_open_fds", pid, Double(descriptors))
            }
        }
    }

    /// A counter the pool keeps elsewhere (in a store), read by the scraping process.
    public mutating func counter(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        line(.counter, SeriesKey.make(name: SeriesKey.counterName(name), dimensions: labels), value)
    }

    /// A gauge the scraping process read itself, for the whole pool.
    public mutating func gauge(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        line(.gauge, SeriesKey.make(name: SeriesKey.sanitized(name), dimensions: labels), value)
    }

    private mutating func line(_ kind: Kind, _ key: String, _ value: Double) {
        let name = SeriesKey.split(key).name
        var family = families[name] ?? Family(kind: kind)
        guard family.kind == kind else { return }
        family.series[key] = ["\(key) \(Self.format(value))"]
        families[name] = family
    }

    public func render() -> String {
        var out = ""
        for name in families.keys.sorted() {
            let family = families[name]!
            let text = help[name] ?? "\(name.replacingOccurrences(of: "_", with: " ")), through swift-metrics"
            out += "# HELP \(name) \(Self.helpEscaped(text))\n# TYPE \(name) \(family.kind.rawValue)\n"
            for key in family.series.keys.sorted() {
                for line in family.series[key]! { out += line + "\n" }
            }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    private static func helpEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

private extension String {
    func replacingOccurrences(of target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}
