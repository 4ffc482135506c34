import Foundation
import NIOConcurrencyHelpers

/// Where the JSON lines go: stdout (journald under systemd).
///
/// Request threads write through a buffer of their own, flushed when the thread is about to
/// wait for a connection, when it holds more than `flushBytes`, and by the worker every
/// `Worker.logFlushInterval`. One write per line under a shared lock cost a busy worker half
/// its throughput; a batch per idle moment costs next to nothing. Other threads write at once.
public final class LogOutput: Sendable {
    public static let shared = LogOutput()

    static let flushBytes = 32 * 1024

    private let buffers = NIOLockedValueBox<[ThreadBuffer]>([])
    private let writeLock = NIOLockedValueBox<Void>(())
    private let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    final class ThreadBuffer: Sendable {
        let bytes = NIOLockedValueBox<[UInt8]>([])
    }

    /// Makes the calling thread buffer its lines from now on.
    public func bufferCurrentThread() {
        guard pthread_getspecific(key) == nil else { return }
        let buffer = ThreadBuffer()
        buffers.withLockedValue { $0.append(buffer) }
        pthread_setspecific(key, Unmanaged.passRetained(buffer).toOpaque())
    }

    func write(_ line: [UInt8]) {
        guard let raw = pthread_getspecific(key) else {
            writeLock.withLockedValue { _ in Self.writeAll(line) }
            return
        }
        let buffer = Unmanaged<ThreadBuffer>.fromOpaque(raw).takeUnretainedValue()
        let full = buffer.bytes.withLockedValue { bytes in
            bytes.append(contentsOf: line)
            return bytes.count >= Self.flushBytes
        }
        if full { flush(buffer) }
    }

    /// Writes out the calling thread's buffered lines.
    public func flushCurrentThread() {
        guard let raw = pthread_getspecific(key) else { return }
        flush(Unmanaged<ThreadBuffer>.fromOpaque(raw).takeUnretainedValue())
    }

    /// Writes out every thread's buffered lines.
    public func flushAll() {
        for buffer in buffers.withLockedValue({ $0 }) { flush(buffer) }
    }

    private func flush(_ buffer: ThreadBuffer) {
        // Taken out under the buffer's lock, written under the output's, so a slow stdout never
        // holds up the thread that is appending.
        let pending = buffer.bytes.withLockedValue { bytes -> [UInt8] in
            defer { bytes.removeAll(keepingCapacity: true) }
            return bytes
        }
        guard !pending.isEmpty else { return }
        writeLock.withLockedValue { _ in Self.writeAll(pending) }
    }

    private static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
