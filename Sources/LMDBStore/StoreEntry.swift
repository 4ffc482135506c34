/// A stored value with the times the store keeps beside it.
public struct StoreEntry: Sendable, Equatable {
    public var value: [UInt8]
    /// Milliseconds since the Unix epoch.
    public var writtenAt: UInt64
    /// Milliseconds since the Unix epoch; 0 for an entry that never expires.
    public var expiresAt: UInt64

    public init(value: [UInt8], writtenAt: UInt64, expiresAt: UInt64) {
        self.value = value
        self.writtenAt = writtenAt
        self.expiresAt = expiresAt
    }

    public func isExpired(at now: UInt64 = StoreClock.nowMillis()) -> Bool {
        expiresAt != 0 && expiresAt <= now
    }

    static let headerSize = 17
    static let formatVersion: UInt8 = 1

    func encoded() -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(Self.headerSize + value.count)
        bytes.append(Self.formatVersion)
        bytes.appendLittleEndian(writtenAt)
        bytes.appendLittleEndian(expiresAt)
        bytes.append(contentsOf: value)
        return bytes
    }

    /// The value part of a stored entry, unless the entry has expired at `now`.
    static func value(in raw: UnsafeRawBufferPointer, at now: UInt64) -> UnsafeRawBufferPointer? {
        guard raw.count >= headerSize, raw[0] == formatVersion else { return nil }
        let expiresAt = raw.loadLittleEndianUInt64(at: 9)
        guard expiresAt == 0 || expiresAt > now else { return nil }
        return UnsafeRawBufferPointer(rebasing: raw[headerSize...])
    }

    static func decode(_ raw: UnsafeRawBufferPointer) -> StoreEntry? {
        guard raw.count >= headerSize, raw[0] == formatVersion else { return nil }
        return StoreEntry(
            value: Array(raw[headerSize...]),
            writtenAt: raw.loadLittleEndianUInt64(at: 1),
            expiresAt: raw.loadLittleEndianUInt64(at: 9)
        )
    }
}

public enum StoreClock {
    public static func nowMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

extension Duration {
    var milliseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000_000
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendBigEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    func loadLittleEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
