import Atomics

#if canImport(Glibc)
import Glibc
#endif

/// One process's file of figures in the pool's metrics directory, mapped MAP_SHARED: an
/// update is one atomic instruction on the mapped page, with no lock and no system call, and
/// what a process counted stays in the page cache when the process dies, kill -9 included.
///
/// The file is a header and an append-only list of series. A series is its kind, its key
/// (`name` and the label text) and its cells of 8 bytes. Only the process that holds the
/// file's lock appends; it publishes a finished series by moving `end` with release
/// ordering, so that a reader that loads `end` with acquire ordering sees whole series only.
///
/// Files are slots, bounded in number: a starting process takes the first slot no live
/// process holds (an open-file-description lock, dropped by the kernel when its holder dies)
/// and adds to the cells already there. A dead worker's counts are therefore neither lost
/// nor counted twice, and the directory never holds more files than processes were ever
/// alive at once.
final class MetricsSlot: @unchecked Sendable {
    enum Kind: UInt16 {
        /// One cell, Int64.
        case counter = 1
        /// One cell, the bits of a Double; per process, reported for live processes only.
        case gauge = 2
        /// Cells: bounds (Double bits) × n, then counts × (n + 1) for each bucket and +Inf, then the sum (Double bits).
        case histogram = 3
        /// One cell, the bits of a Double.
        case floatCounter = 4
    }

    static let magic: UInt64 = 0x3143_5254_454D_514D // "MQMETRC1"
    static let headerSize = 64
    static let recordHeaderSize = 16
    /// Sparse: only the pages that series use take memory and disk.
    static let fileSize = 4 << 20

    let path: String
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let writable: Bool

    private init(path: String, fd: Int32, base: UnsafeMutableRawPointer, writable: Bool) {
        self.path = path
        self.fd = fd
        self.base = base
        self.writable = writable
    }

    deinit {
        munmap(base, Self.fileSize)
        close(fd)
    }

    // MARK: header

    private func atomic(at offset: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (base + offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    var pid: Int32 { Int32(truncatingIfNeeded: atomic(at: 8).load(ordering: .acquiring)) }
    /// The end of the published series; 0 in a new file.
    var end: Int { max(Self.headerSize, Int(atomic(at: 16).load(ordering: .acquiring))) }
    /// How many processes have held this slot.
    var claims: UInt64 { atomic(at: 24).load(ordering: .relaxed) }
    /// Series refused because the file was full.
    var overflows: UInt64 { atomic(at: 32).load(ordering: .relaxed) }

    // MARK: opening

    /// Takes the first free slot of `directory`, creating it if needed; nil when `limit` live
    /// processes hold every slot.
    static func claim(in directory: String, limit: Int) throws(MetricsError) -> MetricsSlot? {
        try makeDirectory(directory)
        for index in 0..<limit {
            let path = "\(directory)/\(slotName(index))"
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw MetricsError("open \(path)", errno) }
            guard lock(fd, F_WRLCK) else {
                close(fd)
                continue
            }
            var status = stat()
            if fstat(fd, &status) != 0 || (status.st_size < fileSize && ftruncate(fd, off_t(fileSize)) != 0) {
                let code = errno
                close(fd)
                throw MetricsError("size \(path)", code)
            }
            guard let mapped = mmap(nil, fileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
                let code = errno
                close(fd)
                throw MetricsError("mmap \(path)", code)
            }
            let slot = MetricsSlot(path: path, fd: fd, base: mapped, writable: true)
            slot.takeOver()
            return slot
        }
        return nil
    }

    /// Maps a slot for reading; nil when it is not a metrics file.
    static func read(_ path: String) -> MetricsSlot? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size >= fileSize,
              let mapped = mmap(nil, fileSize, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            close(fd)
            return nil
        }
        let slot = MetricsSlot(path: path, fd: fd, base: mapped, writable: false)
        guard slot.base.load(as: UInt64.self) == magic else { return nil }
        return slot
    }

    static func slotName(_ index: Int) -> String {
        let digits = String(index)
        return "slot-" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits + ".metrics"
    }

    static func slotPaths(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var paths: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix("slot-") && name.hasSuffix(".metrics") { paths.append("\(directory)/\(name)") }
        }
        return paths.sorted()
    }

    private static func makeDirectory(_ directory: String) throws(MetricsError) {
        var partial = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o750) != 0 && errno != EEXIST { throw MetricsError("mkdir \(partial)", errno) }
        }
    }

    /// An open-file-description lock on the first byte: per open file, not per process, so
    /// two slots of one process exclude each other too, and the kernel drops it at death.
    private static func lock(_ fd: Int32, _ type: Int32) -> Bool {
        var request = flock()
        request.l_type = Int16(type)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 1
        return fcntl(fd, ofdSetLock, &request) == 0
    }

    /// Whether a live process holds this slot.
    var isHeld: Bool {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 1
        guard fcntl(fd, Self.ofdGetLock, &request) == 0 else { return false }
        return request.l_type != Int16(F_UNLCK)
    }

    // Linux's F_OFD_GETLK and F_OFD_SETLK, which Glibc's module leaves out (they need _GNU_SOURCE).
    private static let ofdGetLock: Int32 = 36
    private static let ofdSetLock: Int32 = 37

    /// A new holder keeps every counter and histogram cell and zeroes the gauges, which
    /// spoke for the previous holder only.
    private func takeOver() {
        if base.load(as: UInt64.self) != Self.magic {
            base.storeBytes(of: Self.magic, as: UInt64.self)
        }
        for record in records() where record.kind == .gauge {
            cell(record.cells).store(0, ordering: .relaxed)
        }
        atomic(at: 8).store(UInt64(UInt32(bitPattern: getpid())), ordering: .releasing)
        atomic(at: 24).wrappingIncrement(ordering: .relaxed)
    }

    // MARK: series

    struct Record {
        var kind: Kind
        var key: String
        /// The offset of the first cell.
        var cells: Int
        var cellCount: Int
    }

    func cell(_ offset: Int) -> UnsafeAtomic<UInt64> {
        atomic(at: offset)
    }

    func records() -> [Record] {
        var records: [Record] = []
        var offset = Self.headerSize
        let end = self.end
        while offset + Self.recordHeaderSize <= end {
            let length = Int(base.load(fromByteOffset: offset, as: UInt32.self))
            let rawKind = base.load(fromByteOffset: offset + 4, as: UInt16.self)
            let keyLength = Int(base.load(fromByteOffset: offset + 6, as: UInt16.self))
            let cellCount = Int(base.load(fromByteOffset: offset + 8, as: UInt32.self))
            guard length > 0, offset + length <= end, let kind = Kind(rawValue: rawKind) else { break }
            let keyStart = offset + Self.recordHeaderSize
            let key = String(decoding: UnsafeRawBufferPointer(start: base + keyStart, count: keyLength), as: UTF8.self)
            records.append(Record(kind: kind, key: key, cells: keyStart + Self.padded(keyLength), cellCount: cellCount))
            offset += length
        }
        return records
    }

    /// Appends a series with zeroed cells (or `initial`); nil when the file is full. The
    /// caller serialises appends within its process; no other process appends here.
    func append(kind: Kind, key: String, cellCount: Int, initial: [UInt64] = []) -> Record? {
        let keyBytes = Array(key.utf8.prefix(Int(UInt16.max)))
        let length = Self.recordHeaderSize + Self.padded(keyBytes.count) + cellCount * 8
        let offset = end
        guard offset + length <= Self.fileSize else {
            atomic(at: 32).wrappingIncrement(ordering: .relaxed)
            return nil
        }
        // A series a dead process left half written lies past `end`: zero what it wrote.
        (base + offset).initializeMemory(as: UInt8.self, repeating: 0, count: length)
        base.storeBytes(of: UInt32(length), toByteOffset: offset, as: UInt32.self)
        base.storeBytes(of: kind.rawValue, toByteOffset: offset + 4, as: UInt16.self)
        base.storeBytes(of: UInt16(keyBytes.count), toByteOffset: offset + 6, as: UInt16.self)
        base.storeBytes(of: UInt32(cellCount), toByteOffset: offset + 8, as: UInt32.self)
        let keyStart = offset + Self.recordHeaderSize
        keyBytes.withUnsafeBytes { (base + keyStart).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let cells = keyStart + Self.padded(keyBytes.count)
        for (index, value) in initial.enumerated() where index < cellCount {
            (base + cells + index * 8).storeBytes(of: value, as: UInt64.self)
        }
        atomic(at: 16).store(UInt64(offset + length), ordering: .releasing)
        return Record(kind: kind, key: key, cells: cells, cellCount: cellCount)
    }

    private static func padded(_ count: Int) -> Int { (count + 7) & ~7 }
}

public struct MetricsError: Error, CustomStringConvertible {
    public let description: String

    init(_ operation: String, _ code: Int32) {
        description = "\(operation): \(String(cString: strerror(code)))"
    }
}
