import CFastCGI
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Where a worker's connections wait between requests: one epoll set that all request threads
/// wait on, holding the listening socket and every connection the worker keeps.
///
/// Why no connection can starve the request threads:
/// - An idle connection is armed one-shot in epoll and is in no thread. When it turns readable,
///   the one thread that got the event peeks at what is buffered (`MSG_PEEK`, no wait) and
///   parses the record headers (`RequestFraming`).
/// - Only a whole request (begin record, params, body, each to its closing empty record) goes
///   to libfcgi, which then reads it from the socket buffer without ever waiting.
/// - A partial request goes back to epoll, armed edge-triggered so that only new bytes wake a
///   thread again, and the peek is repeated; it holds no thread meanwhile. Past the read
///   deadline from its first byte it is closed. So is one idle past the idle timeout.
/// - A request whose head is whole but whose body is still arriving (nginx streams bodies
///   larger than the socket buffer) is read by a thread, each read bounded by the read
///   deadline; at most half the threads (one when there is one) may do so at once, and the
///   others wait unread in epoll for a slot, in line and without a deadline of their own (they
///   wait on this worker, not on nginx). The rest of the threads only ever read requests
///   that are already whole, so a flood of idle, partial or stalled-body connections leaves
///   them free for the requests that are complete: health stays answered.
/// - The connections held are bounded (`ConnectionLimits.maxConnections`): to admit a new one
///   past it, the oldest idle one is closed (a kept one with nothing buffered first), else the
///   oldest partial one, else the new one.
///
/// What the argument does not cover: a peer that sends whole requests and never reads the
/// answers is served like nginx, and its writes wait the write timeout. The socket must be
/// reachable by nginx alone (mode 0660).
///
/// Descriptors are closed only by the thread that took them out of the table, after taking
/// them out; every event and hand-back names the slot's generation, so one that outlived its
/// connection (and met its descriptor reused) is recognised and dropped.
final class ConnectionPoller: @unchecked Sendable {
    /// The most a thread peeks at; a request head (begin record and params) must fit in it.
    static let window = 128 * 1024
    private static let listenerToken: UInt64 = 0
    private static let wakeToken: UInt64 = 1
    private static let sweepInterval: useconds_t = 100_000
    private static let idleGraceMilliseconds: Int32 = 2
    /// The most connections one listener event accepts.
    private static let acceptBatch = 64

    private struct Shared {
        var table = ConnectionTable()
        var limits: ConnectionLimits
        var stopping = false
    }

    /// A pthread mutex (NIOLockedValueBox), as is every lock on the request path: the standard
    /// library's `Mutex` is a priority-inheritance futex on Linux, and with more request threads
    /// than cores each contended lock went through the kernel (`futex_lock_pi`). That took 42% of
    /// a worker's CPU and halved health's throughput.
    private let shared: NIOLockedValueBox<Shared>
    private let epoll: Int32
    private let wakeFd: Int32
    private let listener: Int32
    private let streamingLimit: Int
    private let writeTimeoutSeconds: Int

    init(listener: Int32, threads: Int, limits: ConnectionLimits, writeTimeoutSeconds: Int) {
        self.listener = listener
        self.streamingLimit = max(1, threads / 2)
        self.writeTimeoutSeconds = writeTimeoutSeconds
        shared = NIOLockedValueBox(Shared(limits: limits))
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFd = eventfd(0, Int32(EFD_CLOEXEC))
        // Exclusive: a new connection wakes one worker of the pool, not all of them.
        var listenEvent = epoll_event()
        listenEvent.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
        listenEvent.data.u64 = Self.listenerToken
        epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &listenEvent)
        var wakeEvent = epoll_event()
        wakeEvent.events = EPOLLIN.rawValue
        wakeEvent.data.u64 = Self.wakeToken
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFd, &wakeEvent)
    }

    func startSweeping() -> Int32 {
        DetachedThread.start { self.sweepLoop() }
    }

    var connectionCount: Int { shared.withLockedValue { $0.table.count } }

    func update(_ limits: ConnectionLimits) {
        shared.withLockedValue { $0.limits = limits }
    }

    /// Waits for a connection to examine, owned by the caller from then on; nil once the
    /// poller stopped and holds no connection any more. `idle` runs before the thread blocks.
    func next(idle: () -> Void) -> Connection? {
        var event = epoll_event()
        while true {
            // `idle` (a log flush) only once no connection turned readable for a moment: under
            // load the next request is there within it, and a flush per request cost a write each.
            var ready = epoll_wait(epoll, &event, 1, Self.idleGraceMilliseconds)
            if ready == 0 {
                idle()
                ready = epoll_wait(epoll, &event, 1, -1)
            }
            guard ready == 1 else { continue }
            switch event.data.u64 {
            case Self.wakeToken:
                return nil
            case Self.listenerToken:
                if let connection = acceptOne() {
                    acceptWaiting()
                    return connection
                }
            case let token:
                let connection = Connection(token: token)
                if shared.withLockedValue({ $0.table.claim(connection) }) { return connection }
            }
        }
    }

    /// Peeks at what `connection` has buffered: true when the caller is to serve one request
    /// from it now; else the connection went back to epoll, or was closed.
    func examine(_ connection: Connection, buffer: UnsafeMutableRawBufferPointer) -> Bool {
        while true {
            let examination = peek(connection.fd, buffer)
            var drained = false
            let settlement = shared.withLockedValue { shared in
                let settlement = shared.table.settle(connection, examination, now: Self.now(), streamingLimit: streamingLimit,
                                                     stopping: shared.stopping)
                if case .wait(let arming?) = settlement { arm(connection, arming) }
                drained = shared.stopping && shared.table.count == 0
                return settlement
            }
            switch settlement {
            case .serve:
                return true
            case .peekAgain:
                continue
            case .wait:
                return false
            case .close:
                close(connection.fd)
                if drained { wake() }
                return false
            }
        }
    }

    /// A served connection comes back. Returns a connection that waited for the body-reading
    /// slot this one held, for the caller to examine next.
    func release(_ connection: Connection, _ outcome: ConnectionTable.Outcome) -> Connection? {
        var drained = false
        let release = shared.withLockedValue { shared in
            let release = shared.table.release(connection, outcome, now: Self.now(), stopping: shared.stopping)
            if let arming = release.arming { arm(connection, arming) }
            drained = shared.stopping && shared.table.count == 0
            return release
        }
        if release.close { close(connection.fd) }
        if drained { wake() }
        return release.next
    }

    /// Closes every kept idle connection with nothing buffered; one whose next request arrived
    /// meanwhile is served first. Returns how many were closed.
    @discardableResult
    func closeIdle() -> Int {
        var closing: [Int32] = []
        shared.withLockedValue { shared in
            for connection in shared.table.idleConnections(keptOnly: true) where Self.isQuiet(connection.fd) {
                shared.table.remove(connection)
                closing.append(connection.fd)
            }
        }
        for fd in closing { close(fd) }
        return closing.count
    }

    /// Stops accepting, and closes the kept idle connections with nothing buffered. Busy ones
    /// finish their request; partial and fresh ones get the read deadline to complete theirs.
    /// Each is closed after its answer, and `next` returns nil once none is left.
    func stop() {
        var closing: [Int32] = []
        let drained = shared.withLockedValue { shared in
            guard !shared.stopping else { return false }
            shared.stopping = true
            epoll_ctl(epoll, EPOLL_CTL_DEL, listener, nil)
            for connection in shared.table.idleConnections(keptOnly: true) where Self.isQuiet(connection.fd) {
                shared.table.remove(connection)
                closing.append(connection.fd)
            }
            shared.table.holdFreshIdleToDeadline(now: Self.now())
            return shared.table.count == 0
        }
        for fd in closing { close(fd) }
        if drained { wake() }
    }

    // MARK: -

    private func acceptOne() -> Connection? {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else {
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO: break
            // EMFILE and kin: back off instead of spinning; the pool's other workers still serve.
            default: usleep(10_000)
            }
            return nil
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var evicted: [Int32] = []
        var readDeadline = Duration.zero
        let connection: Connection? = shared.withLockedValue { shared in
            readDeadline = shared.limits.readDeadline
            while shared.table.count >= shared.limits.maxConnections {
                guard let victim = Self.victim(in: shared.table) else { return nil }
                shared.table.remove(victim)
                evicted.append(victim.fd)
            }
            return shared.table.adopt(fd, now: Self.now())
        }
        for victim in evicted { close(victim) }
        guard let connection else {
            close(fd)
            return nil
        }
        // Reads wait at most the read deadline: only a body that is still arriving is ever read
        // from a socket that has nothing buffered.
        var timeout = timeval(tv_sec: Int(readDeadline.components.seconds),
                              tv_usec: Int(readDeadline.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var writeTimeout = timeval(tv_sec: writeTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &writeTimeout, socklen_t(MemoryLayout<timeval>.size))
        return connection
    }

    /// Accepts what else waits in the backlog, up to `acceptBatch`, and parks each in epoll as a
    /// connection with nothing read yet, where any thread takes its request. One accept per
    /// listener event was too few: the listener comes round once per pass through the ready
    /// connections, so while nginx replaced kept connections (keepalive_requests) or opened
    /// hundreds at once, its new connections queued in the backlog for seconds, hundreds deep,
    /// behind the ones being served.
    private func acceptWaiting() {
        for _ in 1..<Self.acceptBatch {
            guard let connection = acceptOne() else { return }
            shared.withLockedValue { shared in
                let settlement = shared.table.settle(connection, .quiet, now: Self.now(), streamingLimit: streamingLimit,
                                                     stopping: shared.stopping)
                if case .wait(let arming?) = settlement { arm(connection, arming) }
            }
        }
    }

    /// The connection to close for a new one past the bound: among the oldest kept idle ones
    /// one with nothing buffered (nginx retries a request that meets it closed), else the
    /// oldest partial one, else the oldest idle one, with nothing buffered if it can.
    private static func victim(in table: ConnectionTable) -> Connection? {
        if let kept = table.idleConnections(limit: 8, keptOnly: true).first(where: { isQuiet($0.fd) }) { return kept }
        if let partial = table.incompleteConnections(limit: 1).first { return partial }
        let oldestIdle = table.idleConnections(limit: 8)
        return oldestIdle.first { isQuiet($0.fd) } ?? oldestIdle.first
    }

    private static func isQuiet(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    private func peek(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> ConnectionTable.Examination {
        let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count > 0 {
            let framing = RequestFraming.scan(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            // A head that does not fit in the window is not one nginx sends.
            return .framing(framing == .incomplete && count == buffer.count ? .malformed : framing)
        }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return .quiet }
        return .closed
    }

    /// Sets the connection's epoll registration; called under the lock, so that the descriptor
    /// cannot be closed and reused in between.
    private func arm(_ connection: Connection, _ arming: ConnectionTable.Arming) {
        var event = epoll_event()
        event.data.u64 = connection.token
        let add: Bool
        switch arming {
        case .oneShot(let adding):
            event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue | EPOLLRDHUP.rawValue
            add = adding
        case .edge(let adding):
            event.events = EPOLLIN.rawValue | EPOLLET.rawValue | EPOLLRDHUP.rawValue
            add = adding
        }
        epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, connection.fd, &event)
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    private func sweepLoop() {
        while true {
            usleep(Self.sweepInterval)
            let (expired, drained) = shared.withLockedValue { shared in
                let expired = shared.table.expire(now: Self.now(), idleTimeout: Self.nanoseconds(shared.limits.idleTimeout),
                                                  readDeadline: Self.nanoseconds(shared.limits.readDeadline))
                // Edge-triggered: re-arming reports a connection whose bytes are all in already.
                for waiter in shared.table.waitersWithFreeSlots(streamingLimit: streamingLimit) {
                    arm(waiter, .edge(add: false))
                }
                return (expired, shared.stopping && shared.table.count == 0)
            }
            for fd in expired { close(fd) }
            if drained {
                wake()
                return
            }
        }
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
