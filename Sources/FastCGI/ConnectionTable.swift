/// A connection as the poller hands it around: the descriptor and the generation of its slot.
/// An epoll event or a hand-back that names an older generation is stale: that connection was
/// closed meanwhile and its descriptor number may already belong to a new one.
struct Connection: Equatable, Sendable {
    let fd: Int32
    let generation: UInt32

    init(fd: Int32, generation: UInt32) {
        self.fd = fd
        self.generation = generation
    }

    init(token: UInt64) {
        fd = Int32(bitPattern: UInt32(truncatingIfNeeded: token))
        generation = UInt32(truncatingIfNeeded: token >> 32)
    }

    /// The epoll data word; generations start at 1, so no token is 0.
    var token: UInt64 { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd)) }
}

/// The bookkeeping of every connection a worker holds, indexed by descriptor: its state, and
/// three lists ordered by age (idle ones by when they went idle, incomplete ones by when their
/// first byte was seen), so that the oldest is always at hand for the bound and the deadlines.
/// Not thread-safe: `ConnectionPoller` holds it under its lock, and does the system calls.
struct ConnectionTable {
    enum State: UInt8 {
        case free
        /// Armed one-shot in epoll, waiting for its next request; holds no thread.
        case idle
        /// Part of a request buffered, armed edge-triggered for more; holds no thread.
        case pending
        /// Head buffered, body arriving, waiting for a streaming slot; holds no thread.
        case waiting
        /// One thread is peeking at it.
        case checking
        /// One thread is serving it.
        case busy
    }

    /// What the poller must do after a connection was examined.
    enum Settlement: Equatable {
        case serve
        /// Back in the poller; arm it in epoll as said (nil: it is armed already).
        case wait(Arming?)
        /// More bytes arrived while it was examined: peek again.
        case peekAgain
        /// Dropped from the table: close it.
        case close
    }

    enum Arming: Equatable {
        case oneShot(add: Bool)
        case edge(add: Bool)
    }

    /// What a thread saw when it peeked.
    enum Examination: Equatable {
        case framing(RequestFraming)
        /// Nothing buffered.
        case quiet
        /// End of file or an error.
        case closed
    }

    struct Slot {
        var generation: UInt32 = 0
        var state = State.free
        /// When it went idle, or when the first byte of its request was seen.
        var since: UInt64 = 0
        /// When the first byte of the request being read was seen; 0 between requests.
        var firstByte: UInt64 = 0
        var prev: Int32 = -1
        var next: Int32 = -1
        var registered = false
        var edgeTriggered = false
        var recheck = false
        var streaming = false
        /// Answered a request on it already: nginx keeps it.
        var served = false
    }

    private enum List: Int {
        case idle = 0, pending = 1, waiting = 2
    }

    private(set) var slots: [Slot] = []
    private var heads: [Int32] = [-1, -1, -1]
    private var tails: [Int32] = [-1, -1, -1]
    private(set) var count = 0
    /// Threads reading a body that is still arriving.
    private(set) var streaming = 0
    private var lastGeneration: UInt32 = 0

    func state(of connection: Connection) -> State? {
        isCurrent(connection) ? slots[Int(connection.fd)].state : nil
    }

    func isCurrent(_ connection: Connection) -> Bool {
        let index = Int(connection.fd)
        return index >= 0 && index < slots.count && slots[index].state != .free && slots[index].generation == connection.generation
    }

    /// Takes a freshly accepted descriptor, already claimed by the accepting thread.
    mutating func adopt(_ fd: Int32, now: UInt64) -> Connection {
        let index = Int(fd)
        if index >= slots.count {
            slots.append(contentsOf: repeatElement(Slot(), count: max(index + 1 - slots.count, slots.count / 2, 64)))
        }
        if slots[index].state != .free {
            // libfcgi closed this descriptor under a request whose thread has not reported yet.
            drop(index)
        }
        lastGeneration = lastGeneration == UInt32.max ? 1 : lastGeneration + 1
        slots[index] = Slot(generation: lastGeneration, state: .checking, since: now)
        count += 1
        return Connection(fd: fd, generation: lastGeneration)
    }

    /// An epoll event for `connection`: true when the caller now owns it (state `.checking`).
    mutating func claim(_ connection: Connection) -> Bool {
        guard isCurrent(connection) else { return false }
        let index = Int(connection.fd)
        switch slots[index].state {
        case .idle: unlink(index, from: .idle)
        case .pending: unlink(index, from: .pending)
        case .waiting: unlink(index, from: .waiting)
        case .checking:
            // Edge-triggered news for a connection another thread is peeking at: it must look again.
            slots[index].recheck = true
            return false
        case .busy, .free:
            return false
        }
        slots[index].state = .checking
        return true
    }

    /// Decides what becomes of a connection its owner peeked at.
    mutating func settle(_ connection: Connection, _ examination: Examination, now: UInt64, streamingLimit: Int,
                         stopping: Bool) -> Settlement {
        guard isCurrent(connection), slots[Int(connection.fd)].state == .checking else { return .wait(nil) }
        let index = Int(connection.fd)
        let target: List
        switch examination {
        case .closed, .framing(.malformed):
            drop(index)
            return .close
        case .framing(.complete):
            slots[index].state = .busy
            slots[index].recheck = false
            return .serve
        case .framing(.headComplete):
            if streaming < streamingLimit {
                streaming += 1
                slots[index].streaming = true
                slots[index].state = .busy
                slots[index].recheck = false
                return .serve
            }
            target = .waiting
        case .framing(.incomplete):
            target = .pending
        case .quiet where !stopping:
            target = .idle
        case .quiet where slots[index].served:
            // A stopping worker lets go of a kept connection between requests.
            drop(index)
            return .close
        case .quiet:
            // Accepted as the worker stopped: nginx sends its first request right after the
            // connect, so it gets the read deadline for it rather than a close.
            target = .pending
        }
        if slots[index].recheck {
            slots[index].recheck = false
            return .peekAgain
        }
        if target == .idle {
            return park(index, now: now)
        }
        if slots[index].firstByte == 0 { slots[index].firstByte = now }
        slots[index].since = slots[index].firstByte
        slots[index].state = target == .pending ? .pending : .waiting
        link(index, to: target)
        guard !slots[index].edgeTriggered else { return .wait(nil) }
        let add = !slots[index].registered
        slots[index].registered = true
        slots[index].edgeTriggered = true
        return .wait(.edge(add: add))
    }

    enum Outcome: Equatable {
        case keep, close, closedByLibrary
    }

    struct Release: Equatable {
        /// Close the descriptor (dropped from the table).
        var close = false
        var arming: Arming?
        /// A connection that waited for the streaming slot this one gave back, now owned by the caller.
        var next: Connection?
    }

    /// A served connection comes back: idle again when it is to be kept, else dropped.
    mutating func release(_ connection: Connection, _ outcome: Outcome, now: UInt64, stopping: Bool) -> Release {
        guard isCurrent(connection), slots[Int(connection.fd)].state == .busy else { return Release() }
        let index = Int(connection.fd)
        var release = Release()
        if slots[index].streaming {
            streaming -= 1
            slots[index].streaming = false
            let head = heads[List.waiting.rawValue]
            if head >= 0 {
                let next = Int(head)
                unlink(next, from: .waiting)
                slots[next].state = .checking
                release.next = Connection(fd: Int32(next), generation: slots[next].generation)
            }
        }
        switch outcome {
        case .keep where !stopping:
            slots[index].served = true
            if case .wait(let arming) = park(index, now: now) { release.arming = arming }
        case .closedByLibrary:
            drop(index)
        default:
            drop(index)
            release.close = true
        }
        return release
    }

    /// Drops a connection wherever it is; true when it was there (the caller closes it).
    @discardableResult
    mutating func remove(_ connection: Connection) -> Bool {
        guard isCurrent(connection) else { return false }
        drop(Int(connection.fd))
        return true
    }

    /// Idle connections from the oldest, for the bound and for closing them all; `keptOnly`:
    /// only those that answered a request already. A fresh one is nginx's new connection whose
    /// first request is on its way, and closing it would fail that request: nginx retries only
    /// on a connection it had kept.
    func idleConnections(limit: Int = Int.max, keptOnly: Bool = false) -> [Connection] {
        connections(in: .idle, limit: limit, where: keptOnly ? { $0.served } : nil)
    }

    /// A stopping worker gives the fresh idle connections the read deadline for their first
    /// request, instead of the idle timeout.
    mutating func holdFreshIdleToDeadline(now: UInt64) {
        for connection in connections(in: .idle, limit: Int.max, where: { !$0.served }) {
            let index = Int(connection.fd)
            unlink(index, from: .idle)
            slots[index].state = .pending
            slots[index].firstByte = now
            slots[index].since = now
            link(index, to: .pending)
        }
    }

    /// Connections holding part of a request, oldest first: pending, then waiting for a slot.
    func incompleteConnections(limit: Int = Int.max) -> [Connection] {
        let pending = connections(in: .pending, limit: limit)
        return pending + connections(in: .waiting, limit: limit - pending.count)
    }

    /// Drops and returns the connections past their deadline: idle longer than `idleTimeout`,
    /// or short of a whole head `readDeadline` after its first byte. One waiting for a
    /// body-reading slot never expires: it has its head and waits for this worker, not for
    /// nginx, and closing it would cost nginx a 502 it cannot retry for a POST. Each slot
    /// holder's reads are bounded by the read deadline, so the line always moves.
    mutating func expire(now: UInt64, idleTimeout: UInt64, readDeadline: UInt64) -> [Int32] {
        var expired: [Int32] = []
        for (list, limit) in [(List.idle, idleTimeout), (.pending, readDeadline)] {
            while heads[list.rawValue] >= 0 {
                let index = Int(heads[list.rawValue])
                guard slots[index].since + limit <= now else { break }
                drop(index)
                expired.append(Int32(index))
            }
        }
        return expired
    }

    /// Waiting heads a free body-reading slot could take now. A slot is handed on when its
    /// holder reports back; one freed otherwise (its descriptor reused before the report)
    /// leaves the line with no one to move it, so the sweeper re-arms these.
    func waitersWithFreeSlots(streamingLimit: Int) -> [Connection] {
        connections(in: .waiting, limit: max(0, streamingLimit - streaming))
    }

    // MARK: -

    private mutating func park(_ index: Int, now: UInt64) -> Settlement {
        slots[index].state = .idle
        slots[index].since = now
        slots[index].firstByte = 0
        link(index, to: .idle)
        let add = !slots[index].registered
        slots[index].registered = true
        slots[index].edgeTriggered = false
        return .wait(.oneShot(add: add))
    }

    private func connections(in list: List, limit: Int, where include: ((Slot) -> Bool)? = nil) -> [Connection] {
        var found: [Connection] = []
        var cursor = heads[list.rawValue]
        while cursor >= 0 && found.count < limit {
            if include?(slots[Int(cursor)]) ?? true {
                found.append(Connection(fd: cursor, generation: slots[Int(cursor)].generation))
            }
            cursor = slots[Int(cursor)].next
        }
        return found
    }

    private mutating func drop(_ index: Int) {
        switch slots[index].state {
        case .idle: unlink(index, from: .idle)
        case .pending: unlink(index, from: .pending)
        case .waiting: unlink(index, from: .waiting)
        case .free: return
        case .checking, .busy: break
        }
        if slots[index].streaming { streaming -= 1 }
        slots[index] = Slot(generation: slots[index].generation)
        count -= 1
    }

    private mutating func link(_ index: Int, to list: List) {
        let tail = tails[list.rawValue]
        slots[index].prev = tail
        slots[index].next = -1
        if tail >= 0 { slots[Int(tail)].next = Int32(index) } else { heads[list.rawValue] = Int32(index) }
        tails[list.rawValue] = Int32(index)
    }

    private mutating func unlink(_ index: Int, from list: List) {
        let prev = slots[index].prev, next = slots[index].next
        if prev >= 0 { slots[Int(prev)].next = next } else { heads[list.rawValue] = next }
        if next >= 0 { slots[Int(next)].prev = prev } else { tails[list.rawValue] = prev }
        slots[index].prev = -1
        slots[index].next = -1
    }
}
