import Atomics

#if canImport(Glibc)
import Glibc
#endif

/// A counter every process of the pool adds to atomically, kept in a small file of the store
/// directory that each process maps shared: an increment is one atomic instruction on that
/// page, with no transaction and no system call.
///
/// For counters that must be exact across processes but need not survive a reboot, such as a
/// round-robin cursor: an LMDB write transaction for each turn cost a minting worker a quarter
/// of its CPU. The file is never flushed on purpose; a crash of any process loses nothing, since
/// the page belongs to the kernel's page cache.
public final class SharedCounter: Sendable {
    public let path: String
    private let value: UnsafeAtomic<Int64>
    private static let size = 8

    init(path: String) throws(StoreError) {
        self.path = path
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw StoreError(code: errno, operation: "open \(path)") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw StoreError(code: errno, operation: "fstat \(path)") }
        // Growing from empty to 8 bytes gives zeros; two processes doing it at once agree.
        if status.st_size < Self.size, ftruncate(fd, off_t(Self.size)) != 0 {
            throw StoreError(code: errno, operation: "ftruncate \(path)")
        }
        guard let mapped = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw StoreError(code: errno, operation: "mmap \(path)")
        }
        value = UnsafeAtomic(at: mapped.assumingMemoryBound(to: Int64.AtomicRepresentation.self))
    }

    /// Adds one and returns the new value; the first call on a new file returns 1.
    public func next() -> Int64 {
        value.loadThenWrappingIncrement(ordering: .relaxed) &+ 1
    }

    public var current: Int64 {
        value.load(ordering: .relaxed)
    }
}
