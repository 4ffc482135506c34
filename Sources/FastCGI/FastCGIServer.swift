import CFastCGI
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pool of request threads answering FastCGI requests on one listening socket that other
/// worker processes may share.
///
/// Each thread accepts for itself and hands the connection to libfcgi, instead of letting
/// `FCGX_Accept_r` block in `accept()`: a blocked accept does not wake when the socket closes,
/// and shutting the shared socket down would stop every worker of the pool. Here the threads
/// wait in epoll on the listener (EPOLLEXCLUSIVE, so one connection wakes one thread) and on an
/// eventfd that `stop()` makes readable; a thread busy with a request finishes it first.
/// nginx must not keep connections alive (`fastcgi_keep_conn off`): a kept connection would
/// hold its thread while idle.
public final class FastCGIServer: @unchecked Sendable {
    public typealias Responder = @Sendable (FastCGIRequest) -> FastCGIResponse

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

        public init(served: Int, inFlight: Int, threads: Int) {
            self.served = served
            self.inFlight = inFlight
            self.threads = threads
        }
    }

    private let listener: FastCGIListener
    private let threadCount: Int
    private let ioTimeoutSeconds: Int
    private let responder: Responder
    private let hooks: ThreadHooks
    private let wakeFd: Int32
    private let stopping = Atomic<Bool>(false)
    private let served = Atomic<Int>(0)
    private let inFlight = Atomic<Int>(0)
    private let running = Atomic<Int>(0)

    /// `ioTimeoutSeconds` bounds how long a thread waits on a stalled nginx connection.
    public init(listener: FastCGIListener, threads: Int, ioTimeoutSeconds: Int = 30, hooks: ThreadHooks = ThreadHooks(),
                responder: @escaping Responder) {
        self.listener = listener
        self.hooks = hooks
        self.threadCount = max(1, threads)
        self.ioTimeoutSeconds = ioTimeoutSeconds
        self.responder = responder
        self.wakeFd = eventfd(0, Int32(EFD_CLOEXEC))
    }

    public var counters: Counters {
        Counters(served: served.load(ordering: .relaxed), inFlight: inFlight.load(ordering: .relaxed), threads: threadCount)
    }

    public func start() throws(FastCGIServerError) {
        let rc = FCGX_Init()
        guard rc == 0 else { throw .initFailed(rc) }
        // Several threads and processes race for each connection; the losers must get EAGAIN
        // rather than block in accept().
        let flags = fcntl(listener.fd, F_GETFL)
        _ = fcntl(listener.fd, F_SETFL, flags | O_NONBLOCK)
        signal(SIGPIPE, SIG_IGN)
        for _ in 0..<threadCount {
            running.add(1, ordering: .relaxed)
            let box = Unmanaged.passRetained(self)
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { argument in
                let server = Unmanaged<FastCGIServer>.fromOpaque(argument!).takeRetainedValue()
                server.acceptLoop()
                return nil
            }, box.toOpaque())
            if created != 0 {
                box.release()
                running.subtract(1, ordering: .relaxed)
                throw .threadFailed(created)
            }
            pthread_detach(thread)
        }
    }

    /// Stops accepting. Requests in flight run to their end; `waitUntilStopped` waits for them.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
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

    private func acceptLoop() {
        defer { running.subtract(1, ordering: .releasing) }
        hooks.started()
        defer { hooks.idle() }
        let poller = epoll_create1(Int32(EPOLL_CLOEXEC))
        defer { close(poller) }
        var listenEvent = epoll_event()
        listenEvent.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
        listenEvent.data.fd = listener.fd
        epoll_ctl(poller, EPOLL_CTL_ADD, listener.fd, &listenEvent)
        var wakeEvent = epoll_event()
        wakeEvent.events = EPOLLIN.rawValue
        wakeEvent.data.fd = wakeFd
        epoll_ctl(poller, EPOLL_CTL_ADD, wakeFd, &wakeEvent)

        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, -1, 0)
        var ready = [epoll_event](repeating: epoll_event(), count: 2)

        while !stopping.load(ordering: .acquiring) {
            let connection = accept(listener.fd, nil, nil)
            if connection >= 0 {
                serve(connection, request)
                continue
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                hooks.idle()
                _ = epoll_wait(poller, &ready, 2, -1)
            case EINTR, ECONNABORTED, EPROTO:
                continue
            default:
                // EMFILE and kin: back off instead of spinning, the pool's other workers still serve.
                usleep(10_000)
            }
        }
    }

    private func serve(_ connection: Int32, _ request: UnsafeMutablePointer<FCGX_Request>) {
        var timeout = timeval(tv_sec: ioTimeoutSeconds, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        inFlight.add(1, ordering: .relaxed)
        defer { inFlight.subtract(1, ordering: .relaxed) }

        // FCGX_Accept_r skips its own accept when ipcFd is set; keepConnection stops the
        // FCGX_Finish_r it runs first from closing the connection just handed over.
        request.pointee.ipcFd = connection
        request.pointee.keepConnection = 1
        guard FCGX_Accept_r(request) == 0 else {
            // libfcgi closed the connection after a protocol error.
            request.pointee.ipcFd = -1
            return
        }
        let exchange = FastCGIExchange(connection: connection, requestId: request.pointee.requestId)
        let response = responder(FastCGIRequest(raw: request, exchange: exchange))
        let out = request.pointee.out!
        if exchange.finish(),
           !ResponseRecords.write(head: response.head(), body: response.body, requestId: request.pointee.requestId, to: connection) {
            out.pointee.FCGI_errno = errno
        }
        // The stream's records are written: FCGX_Finish_r must not write them again.
        out.pointee.wasFCloseCalled = 1
        out.pointee.isClosed = 1
        FCGX_Finish_r(request)
        if request.pointee.ipcFd >= 0 {
            // nginx asked to keep the connection; an idle kept connection would pin this thread.
            close(request.pointee.ipcFd)
            request.pointee.ipcFd = -1
        }
        served.add(1, ordering: .relaxed)
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
