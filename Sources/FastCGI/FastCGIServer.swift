import CFastCGI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pool of request threads answering FastCGI requests on one listening socket that other
/// worker processes may share, and keeping nginx's connections open between requests.
///
/// The threads wait in one `ConnectionPoller` (epoll) on the listener, the idle kept
/// connections and an eventfd that `stop()` uses; the poller hands a thread a connection only
/// once a whole request is buffered on it, so that idle or half-sent connections never hold a
/// thread (the poller's comment has the argument). The thread then hands the descriptor to
/// libfcgi (`ipcFd`), reads exactly one request through it, answers, and gives the connection
/// back to the poller when nginx asked to keep it (FCGI_KEEP_CONN), else closes it. Nothing
/// blocks in `accept()`: a blocked accept does not wake when the socket closes, and shutting
/// the shared socket down would stop every worker of the pool.
public final class FastCGIServer: @unchecked Sendable {
    public typealias Responder = @Sendable (FastCGIRequest) -> FastCGIResponse

    /// The name each request thread carries (the kernel keeps at most 15 bytes).
    public static let requestThreadName = "fcgi-request"

    /// Calls into each request thread: once when it starts, and each time it is about to wait
    /// for a connection (the moment to flush what it buffered).
    public struct ThreadHooks: Sendable {
        public var started: @Sendable () -> Void
        public var idle: @Sendable () -> Void

        public init(started: @escaping @Sendable () -> Void = {}, idle: @escaping @Sendable () -> Void = {}) {
            self.started = started
            self.idle = idle
        }
    }

    public struct Counters: Sendable {
        public var served: Int
        public var inFlight: Int
        public var threads: Int
        /// Threads allowed to serve now (the rest are parked): the active threads, plus one
        /// for each thread stalled in a request.
        public var activeThreads: Int
        /// Connections open to this worker: idle, arriving and busy.
        public var connections: Int

        public init(served: Int, inFlight: Int, threads: Int, activeThreads: Int = 0, connections: Int = 0) {
            self.served = served
            self.inFlight = inFlight
            self.threads = threads
            self.activeThreads = activeThreads
            self.connections = connections
        }
    }

    private let listener: FastCGIListener
    private let threadCount: Int
    private let responder: Responder
    private let hooks: ThreadHooks
    private let poller: ConnectionPoller
    private let gate: ThreadGate
    private let served = Atomic<Int>(0)
    private let inFlight = Atomic<Int>(0)
    private let running = Atomic<Int>(0)

    /// `ioTimeoutSeconds` bounds how long a thread waits to write to a stalled nginx connection.
    /// `activeThreads`: how many of the `threads` serve at once while none is stalled (`ThreadGate`).
    public init(listener: FastCGIListener, threads: Int, activeThreads: Int, limits: ConnectionLimits = ConnectionLimits(), ioTimeoutSeconds: Int = 30,
                hooks: ThreadHooks = ThreadHooks(), responder: @escaping Responder) {
        self.listener = listener
        self.hooks = hooks
        self.threadCount = max(1, threads)
        self.responder = responder
        self.poller = ConnectionPoller(listener: listener.fd, threads: max(1, threads), limits: Self.fitted(limits),
                                       writeTimeoutSeconds: ioTimeoutSeconds)
        self.gate = ThreadGate(base: activeThreads)
    }

    public var counters: Counters {
        Counters(served: served.load(ordering: .relaxed), inFlight: inFlight.load(ordering: .relaxed), threads: threadCount,
                 activeThreads: gate.allowance, connections: poller.connectionCount)
    }

    public func start() throws(FastCGIServerError) {
        let rc = FCGX_Init()
        guard rc == 0 else { throw .initFailed(rc) }
        // Several threads and processes race for each connection; the losers must get EAGAIN
        // rather than block in accept().
        let flags = fcntl(listener.fd, F_GETFL)
        _ = fcntl(listener.fd, F_SETFL, flags | O_NONBLOCK)
        signal(SIGPIPE, SIG_IGN)
        let sweeper = poller.startSweeping()
        if sweeper != 0 { throw .threadFailed(sweeper) }
        let seats = (0..<threadCount).map { _ in gate.seat() }
        let monitor = gate.startMonitoring()
        if monitor != 0 { throw .threadFailed(monitor) }
        for seat in seats {
            running.add(1, ordering: .relaxed)
            let created = DetachedThread.start {
                // Named, so that `top -H`, perf and strace can tell the request threads apart.
                _ = fastcgi_name_current_thread(FastCGIServer.requestThreadName)
                self.requestLoop(seat)
            }
            if created != 0 {
                running.subtract(1, ordering: .relaxed)
                throw .threadFailed(created)
            }
        }
    }

    /// New limits for the connections kept from now on (a reload).
    public func update(_ limits: ConnectionLimits) {
        poller.update(Self.fitted(limits))
    }

    /// Closes the idle kept connections (nginx opens new ones as it needs them); returns how many.
    @discardableResult
    public func closeIdleConnections() -> Int {
        poller.closeIdle()
    }

    /// Stops accepting and closes the idle connections. Requests in flight run to their end and
    /// their connections are closed then; `waitUntilStopped` waits for them.
    public func stop() {
        poller.stop()
        gate.stop()
    }

    /// Waits until every thread has left, or `timeout` passed; true when all left.
    public func waitUntilStopped(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while running.load(ordering: .acquiring) > 0 {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// A bound the process can hold: each connection is a descriptor, and the soft limit
    /// (1024 under systemd unless raised) is lifted to the hard one first.
    private static func fitted(_ limits: ConnectionLimits) -> ConnectionLimits {
        var files = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        if files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }
        var fitted = limits
        // Room for the store, logs, upstream clients and the listener.
        let room = files.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(files.rlim_cur) - 256
        fitted.maxConnections = max(1, min(limits.maxConnections, room))
        return fitted
    }

    private func requestLoop(_ seat: ThreadGate.Seat) {
        defer { running.subtract(1, ordering: .releasing) }
        hooks.started()
        defer { hooks.idle() }
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, -1, 0)
        let window = UnsafeMutableRawBufferPointer.allocate(byteCount: ConnectionPoller.window, alignment: 8)
        defer { window.deallocate() }

        gate.enter(parking: hooks.idle)
        while let claimed = poller.next(idle: hooks.idle) {
            seat.beginServing()
            var next: Connection? = claimed
            while let connection = next, poller.examine(connection, buffer: window) {
                next = poller.release(connection, serve(connection, request, scratch: window))
            }
            seat.endServing()
            gate.stay(parking: hooks.idle)
        }
    }

    /// Reads and answers the one request buffered on `connection`.
    private func serve(_ connection: Connection, _ request: UnsafeMutablePointer<FCGX_Request>,
                       scratch: UnsafeMutableRawBufferPointer) -> ConnectionTable.Outcome {
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }

        // FCGX_Accept_r skips its own accept when ipcFd is set, and keepConnection stops the
        // FCGX_Finish_r it runs first from closing the connection just handed over. Detached:
        // should libfcgi close the connection after all (a request it refuses), it closes it
        // at once instead of shutting it down and reading on for up to 2 s.
        request.pointee.ipcFd = connection.fd
        request.pointee.keepConnection = 1
        request.pointee.detached = 1
        guard FCGX_Accept_r(request) == 0 else {
            request.pointee.ipcFd = -1
            return .closedByLibrary
        }
        // Set by FCGX_Accept_r from the begin record's FCGI_KEEP_CONN flag.
        let keepAsked = request.pointee.keepConnection != 0
        let exchange = FastCGIExchange(connection: connection.fd, requestId: request.pointee.requestId)
        let response = responder(FastCGIRequest(raw: request, exchange: exchange))
        // An early answer shut the connection down: it must not go back to the poller.
        var keep = exchange.finish()
        if keep {
            // Read what the responder left of the body before answering, never after: nginx
            // sends its next request on a kept connection as soon as it has the answer, and
            // libfcgi's buffered reads would swallow the start of it, or all of it. The next
            // request must also start at a record boundary for the poller.
            let bodyRead = Self.skipRestOfBody(request.pointee.in, scratch: scratch)
            keep = ResponseRecords.write(head: response.head(), body: response.body, requestId: request.pointee.requestId, to: connection.fd)
                && keepAsked && bodyRead
        }
        // The answer's records are written: free the streams and params without writing or closing.
        FCGX_Free(request, 0)
        request.pointee.ipcFd = -1
        served.add(1, ordering: .relaxed)
        return keep ? .keep : .close
    }

    private static func skipRestOfBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, scratch: UnsafeMutableRawBufferPointer) -> Bool {
        guard let stream else { return false }
        let into = scratch.baseAddress!.assumingMemoryBound(to: CChar.self)
        while FCGX_HasSeenEOF(stream) == 0 {
            if FCGX_GetStr(into, Int32(scratch.count), stream) <= 0 { break }
        }
        return FCGX_GetError(stream) == 0 && FCGX_HasSeenEOF(stream) != 0
    }
}

public enum FastCGIServerError: Error, CustomStringConvertible {
    case initFailed(Int32)
    case threadFailed(Int32)

    public var description: String {
        switch self {
        case .initFailed(let code): "FCGX_Init failed (\(code))"
        case .threadFailed(let code): "cannot start a request thread: \(String(cString: strerror(code)))"
        }
    }
}
