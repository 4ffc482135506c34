/// How far the bytes buffered on a connection make up one FastCGI responder request, read from a
/// `MSG_PEEK` copy before any thread commits to reading it through libfcgi.
///
/// A request is FCGI_BEGIN_REQUEST (responder role), FCGI_PARAMS records up to an empty one, then
/// FCGI_STDIN records up to an empty one, all with the begin record's id. The params' name-value
/// lengths are checked too: libfcgi aborts the process on a length near INT_MAX.
enum RequestFraming: Equatable {
    /// The whole request is buffered: libfcgi reads it without waiting. `keepConnection` is the
    /// begin record's FCGI_KEEP_CONN flag.
    case complete(keepConnection: Bool)
    /// Begin and params are buffered, the body is still arriving.
    case headComplete(keepConnection: Bool)
    /// Not even the params are all there yet.
    case incomplete
    /// Not a request nginx would send: the connection is closed unread.
    case malformed

    private static let beginRequest: UInt8 = 1
    private static let params: UInt8 = 4
    private static let stdin: UInt8 = 5
    private static let responder = 1
    private static let keepConnectionFlag: UInt8 = 1

    static func scan(_ bytes: UnsafeRawBufferPointer) -> RequestFraming {
        var offset = 0
        var requestId = -1
        var keep = false
        var paramsEnded = false
        var nameValue = NameValueChecker()
        while true {
            guard offset + 8 <= bytes.count else { return paramsEnded ? .headComplete(keepConnection: keep) : .incomplete }
            guard bytes[offset] == 1 else { return .malformed }
            let type = bytes[offset + 1]
            let id = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let contentLength = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let end = offset + 8 + contentLength + Int(bytes[offset + 6])
            let content = offset + 8
            if requestId < 0 {
                guard type == beginRequest, id != 0, contentLength == 8 else { return .malformed }
                guard end <= bytes.count else { return .incomplete }
                guard Int(bytes[content]) << 8 | Int(bytes[content + 1]) == responder else { return .malformed }
                keep = bytes[content + 2] & keepConnectionFlag != 0
                requestId = id
            } else {
                guard id == requestId else { return .malformed }
                if !paramsEnded {
                    guard type == params else { return .malformed }
                    guard end <= bytes.count else { return .incomplete }
                    if contentLength == 0 {
                        guard nameValue.isAtPairBoundary else { return .malformed }
                        paramsEnded = true
                    } else if !nameValue.feed(UnsafeRawBufferPointer(rebasing: bytes[content..<content + contentLength])) {
                        return .malformed
                    }
                } else {
                    guard type == stdin else { return .malformed }
                    guard end <= bytes.count else { return .headComplete(keepConnection: keep) }
                    if contentLength == 0 { return .complete(keepConnection: keep) }
                }
            }
            offset = end
        }
    }

    /// Follows the name-value pairs across record boundaries, as libfcgi's ReadParams reads them.
    private struct NameValueChecker {
        private var fieldWidth = 0
        private var fieldRead = 0
        private var field = 0
        private var nameLength: Int?
        private var toSkip = 0
        /// A name or value longer than this is refused: nginx's own limits are far below it.
        private static let maxLength = 1 << 20

        var isAtPairBoundary: Bool { fieldRead == 0 && nameLength == nil && toSkip == 0 }

        mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
            var index = 0
            while index < bytes.count {
                if toSkip > 0 {
                    let step = min(toSkip, bytes.count - index)
                    toSkip -= step
                    index += step
                    continue
                }
                let byte = bytes[index]
                index += 1
                if fieldRead == 0 {
                    fieldWidth = byte & 0x80 == 0 ? 1 : 4
                    field = Int(byte & 0x7f)
                } else {
                    field = field << 8 | Int(byte)
                }
                fieldRead += 1
                guard fieldRead == fieldWidth else { continue }
                fieldRead = 0
                guard field <= Self.maxLength else { return false }
                if let name = nameLength {
                    toSkip = name + field
                    nameLength = nil
                } else {
                    nameLength = field
                }
            }
            return true
        }
    }
}
