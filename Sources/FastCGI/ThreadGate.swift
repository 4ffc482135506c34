import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Lets only as many request threads take part at a time as the load needs: `base` of them,
/// plus one for each thread held in a request past the stall time.
///
/// Why: every request thread waiting in epoll is woken for a new request, even when a busy
/// thread would take it from the ready list moments later. With more request threads than
/// cores, under load each request paid a wake-up and a task switch, the largest cost in a
/// worker's profile. The threads past the allowance park here instead, and do not wake.
///
/// Why the pool stays large: a request thread may block (an upstream call, a database round
/// trip, a body still arriving). A monitor looks every `tick` for threads in a request past
/// `stall`, and lets a parked thread in for each, so blocked threads delay the requests queued
/// behind them by a few milliseconds (`stall` plus up to `idleTick` when the worker was idle),
/// and never hold every thread that could serve.
final class ThreadGate: @unchecked Sendable {
    /// One request thread's record: since when it serves a request, 0 when it does not.
    final class Seat: Sendable {
        fileprivate let servingSince = Atomic<UInt64>(0)

        func beginServing() { servingSince.store(ConnectionPoller.now(), ordering: .relaxed) }
        func endServing() { servingSince.store(0, ordering: .relaxed) }
    }

    static let stall: UInt64 = 1_000_000
    static let tick: useconds_t = 1_000
    static let idleTick: useconds_t = 5_000

    private let base: Int
    private var seats: [Seat] = []
    // Allocated, not stored properties: a pthread mutex or condition must not move, and `&`
    // on a stored property gives no lasting address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let parkedCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var allowed: Int
    private var inside = 0
    private var stopping = false

    init(base: Int) {
        self.base = max(1, base)
        allowed = self.base
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(parkedCondition, nil)
    }

    deinit {
        pthread_cond_destroy(parkedCondition)
        pthread_mutex_destroy(mutex)
        parkedCondition.deallocate()
        mutex.deallocate()
    }

    /// How many threads may take part now.
    var allowance: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return min(allowed, seats.count)
    }

    /// A seat for a thread about to start; call before `startMonitoring`.
    func seat() -> Seat {
        let seat = Seat()
        seats.append(seat)
        return seat
    }

    func startMonitoring() -> Int32 {
        DetachedThread.start { self.monitor() }
    }

    /// Returns once the calling thread may take part; `parking` runs before it parks.
    func enter(parking: () -> Void) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        waitForRoom(parking: parking)
        inside += 1
    }

    /// Called between requests: parks the calling thread while more take part than allowed.
    func stay(parking: () -> Void) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard inside > allowed, !stopping else { return }
        inside -= 1
        waitForRoom(parking: parking)
        inside += 1
    }

    /// Lets every thread in, so that each finds the poller stopped and leaves.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(parkedCondition)
        pthread_mutex_unlock(mutex)
    }

    private func waitForRoom(parking: () -> Void) {
        guard inside >= allowed, !stopping else { return }
        pthread_mutex_unlock(mutex)
        parking()
        pthread_mutex_lock(mutex)
        while inside >= allowed, !stopping {
            pthread_cond_wait(parkedCondition, mutex)
        }
    }

    private func monitor() {
        var serving = false
        while true {
            // A worker with no request in flight looks less often: its next request can stall
            // no sooner than `stall` after it starts.
            usleep(serving ? Self.tick : Self.idleTick)
            let now = ConnectionPoller.now()
            var stalled = 0
            serving = false
            for seat in seats {
                let since = seat.servingSince.load(ordering: .relaxed)
                guard since != 0 else { continue }
                serving = true
                // A request that began after `now` was read is not stalled.
                if since < now && now - since > Self.stall { stalled += 1 }
            }
            pthread_mutex_lock(mutex)
            if stopping {
                pthread_mutex_unlock(mutex)
                return
            }
            allowed = base + stalled
            // Parked threads re-check when woken, so a signal too many costs a wake-up only.
            for _ in 0..<max(0, min(allowed, seats.count) - inside) {
                pthread_cond_signal(parkedCondition)
            }
            pthread_mutex_unlock(mutex)
        }
    }
}
