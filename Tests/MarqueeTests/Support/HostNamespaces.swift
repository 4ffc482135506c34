import Foundation

/// Several "hosts" on one machine: a network namespace each, joined by a bridge in the test's
/// own namespace, on a /24 of 10.231.0.0/16 that nothing else on the machine uses. The bridge
/// holds `.1` (where the test's own servers listen: PostgreSQL, the fake upstreams, the front
/// nginx's side), host `i` (from 0) holds `.(11 + i)`.
///
/// Names carry the test process's pid and a random tag, so that parallel runs never collide and
/// a later run can tell leftovers of a dead run from a live one's, and remove them. `tearDown()`
/// kills what still runs inside the namespaces by pid and deletes every namespace and link,
/// also when the test failed; deinit does the same if the owner forgot.
final class HostNamespaces: @unchecked Sendable {
    static let ip = "/usr/sbin/ip"
    static let prefix = "marquee-test"

    let tag: String
    let subnet: Int
    let namespaces: [String]
    private var removed = false

    /// Interface names have at most 15 characters.
    var bridge: String { "mqb\(tag)" }
    private func rootSide(_ index: Int) -> String { "mqv\(tag)\(index + 1)" }
    private func hostSide(_ index: Int) -> String { "mqh\(tag)\(index + 1)" }

    /// Where the hosts reach the test's own servers.
    var gateway: String { "10.231.\(subnet).1" }
    func address(ofHost index: Int) -> String { "10.231.\(subnet).\(11 + index)" }
    var cidr: String { "10.231.\(subnet).0/24" }

    /// Whether this machine lets the test make namespaces: root and iproute2.
    static func check() throws {
        guard FileManager.default.isExecutableFile(atPath: ip) else {
            throw StackError("\(ip) is missing: apt-get install iproute2")
        }
        guard geteuid() == 0 else { throw StackError("network namespaces need root; run the multi-host suite as root") }
    }

    init(hosts: Int) throws {
        try Self.check()
        Self.removeLeftovers()
        let tag = String(format: "%06x", UInt32.random(in: 0..<0xFF_FFFF))
        self.tag = tag
        subnet = try Self.freeSubnet()
        namespaces = (1...hosts).map { "\(Self.prefix)-\(getpid())-\(tag)-h\($0)" }
        do {
            try Self.ip("link", "add", bridge, "type", "bridge")
            try Self.ip("addr", "add", "\(gateway)/24", "dev", bridge)
            try Self.ip("link", "set", bridge, "up")
            for (index, namespace) in namespaces.enumerated() {
                try Self.ip("netns", "add", namespace)
                try Self.ip("link", "add", rootSide(index), "type", "veth", "peer", "name", hostSide(index))
                try Self.ip("link", "set", hostSide(index), "netns", namespace)
                try Self.ip("link", "set", rootSide(index), "master", bridge, "up")
                try Self.ip("-n", namespace, "addr", "add", "\(address(ofHost: index))/24", "dev", hostSide(index))
                try Self.ip("-n", namespace, "link", "set", hostSide(index), "up")
                try Self.ip("-n", namespace, "link", "set", "lo", "up")
            }
        } catch {
            tearDown()
            throw error
        }
    }

    /// The pids of every process in host `index`'s namespace.
    func pids(ofHost index: Int) -> [Int32] {
        Self.pids(in: namespaces[index])
    }

    /// kill -9 every process of host `index`: nginx's master and its workers, the marquee
    /// workers, whatever else runs there. Answers how many it killed.
    @discardableResult
    func killEverything(onHost index: Int) -> Int {
        var killed = 0
        for _ in 0..<5 {
            let pids = pids(ofHost: index)
            if pids.isEmpty { break }
            for pid in pids where kill(pid, SIGKILL) == 0 { killed += 1 }
            usleep(50_000)
        }
        return killed
    }

    func tearDown() {
        guard !removed else { return }
        removed = true
        for namespace in namespaces { Self.remove(namespace: namespace) }
        try? Self.ip("link", "del", bridge)
    }

    deinit { tearDown() }

    // MARK: Machinery

    private static func remove(namespace: String) {
        for _ in 0..<20 {
            let pids = pids(in: namespace)
            if pids.isEmpty { break }
            for pid in pids { kill(pid, SIGKILL) }
            usleep(50_000)
        }
        // Deleting the namespace also deletes the veth pair inside it.
        try? ip("netns", "del", namespace)
    }

    private static func pids(in namespace: String) -> [Int32] {
        ((try? ip("netns", "pids", namespace)) ?? "").split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Namespaces (and their bridges) of earlier runs whose test process is gone.
    private static func removeLeftovers() {
        let listing = (try? ip("netns", "list")) ?? ""
        for line in listing.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard name.hasPrefix(prefix + "-"), parts.count == 5, let pid = Int32(parts[2]) else { continue }
            if pid == getpid() || kill(pid, 0) == 0 { continue }
            remove(namespace: name)
            try? ip("link", "del", "mqb\(parts[3])")
        }
    }

    /// A /24 of 10.231.0.0/16 no interface of this namespace holds yet.
    private static func freeSubnet() throws -> Int {
        let used = try ip("-4", "-o", "addr", "show")
        let candidates = (1...254).shuffled()
        guard let free = candidates.first(where: { !used.contains("10.231.\($0).") }) else {
            throw StackError("every /24 of 10.231.0.0/16 is in use")
        }
        return free
    }

    @discardableResult
    static func ip(_ arguments: String...) throws -> String {
        try ip(arguments)
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        try Command.output(ip, arguments)
    }
}
