#if canImport(Glibc)
import Glibc
#endif

/// A whole response as FastCGI records, written with one `writev`: the STDOUT stream (head,
/// then body), its empty closing record, and FCGI_END_REQUEST.
///
/// libfcgi's writer buffers 8 KiB and writes each full buffer as it goes, so a 10 KiB answer
/// cost two writes and two wake-ups of nginx, and every byte was copied into the buffer first.
/// Reading the request stays with libfcgi; only the answer's framing is done here.
enum ResponseRecords {
    private static let version: UInt8 = 1
    private static let stdout: UInt8 = 6
    private static let endRequest: UInt8 = 3
    private static let maxContent = 65_535
    /// Linux's IOV_MAX, which Glibc's module does not export.
    private static let maxVectors = 1024

    /// Writes the records to `fd`; false when the peer is gone or the write timed out.
    static func write(head: [UInt8], body: [UInt8], requestId: Int32, to fd: Int32) -> Bool {
        let id = UInt16(truncatingIfNeeded: requestId)
        let chunks = chunkSizes(head.count).map { (part: 0, count: $0) } + chunkSizes(body.count).map { (part: 1, count: $0) }
        // Every record header first, in one array that does not move while the iovecs point into it.
        var framing: [UInt8] = []
        framing.reserveCapacity(chunks.count * 8 + 24)
        for chunk in chunks {
            appendHeader(type: stdout, id: id, contentLength: chunk.count, to: &framing)
        }
        appendHeader(type: stdout, id: id, contentLength: 0, to: &framing)
        appendHeader(type: endRequest, id: id, contentLength: 8, to: &framing)
        // appStatus 0, protocolStatus FCGI_REQUEST_COMPLETE, three reserved bytes.
        framing.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])

        return framing.withUnsafeBytes { framingBytes in
            head.withUnsafeBytes { headBytes in
                body.withUnsafeBytes { bodyBytes in
                    var vectors: [iovec] = []
                    vectors.reserveCapacity(chunks.count * 2 + 1)
                    var offsets = [0, 0]
                    for (index, chunk) in chunks.enumerated() {
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: framingBytes.baseAddress! + index * 8), iov_len: 8))
                        let source = chunk.part == 0 ? headBytes : bodyBytes
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: source.baseAddress! + offsets[chunk.part]),
                                             iov_len: chunk.count))
                        offsets[chunk.part] += chunk.count
                    }
                    let trailer = chunks.count * 8
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: framingBytes.baseAddress! + trailer),
                                         iov_len: framingBytes.count - trailer))
                    return writeAll(fd, &vectors)
                }
            }
        }
    }

    /// Record content lengths for `count` bytes; none for none.
    private static func chunkSizes(_ count: Int) -> [Int] {
        stride(from: 0, to: count, by: maxContent).map { min(maxContent, count - $0) }
    }

    private static func appendHeader(type: UInt8, id: UInt16, contentLength: Int, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: [version, type, UInt8(id >> 8), UInt8(id & 0xff),
                                  UInt8(contentLength >> 8), UInt8(contentLength & 0xff), 0, 0])
    }

    private static func writeAll(_ fd: Int32, _ vectors: inout [iovec]) -> Bool {
        var first = 0
        while first < vectors.count {
            let batch = Int32(min(vectors.count - first, maxVectors))
            let written = vectors.withUnsafeMutableBufferPointer { writev(fd, $0.baseAddress! + first, batch) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            var remaining = written
            while remaining > 0 {
                if remaining >= vectors[first].iov_len {
                    remaining -= vectors[first].iov_len
                    first += 1
                } else {
                    vectors[first].iov_base += remaining
                    vectors[first].iov_len -= remaining
                    remaining = 0
                }
            }
        }
        return true
    }
}
