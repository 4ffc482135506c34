import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The connection of one request in flight, which another thread may answer before the
/// responder returns: a request time limit answers for a responder that is stuck. The
/// responder's own answer is then dropped.
public final class FastCGIExchange: Sendable {
    private enum State {
        case running, answeredEarly, finished
    }

    private let connection: Int32
    private let requestId: Int32
    private let state = NIOLockedValueBox(State.running)

    init(connection: Int32, requestId: Int32) {
        self.connection = connection
        self.requestId = requestId
    }

    /// Sends `response` now, unless the responder's answer went first; true when this one went.
    @discardableResult
    public func answerEarly(_ response: FastCGIResponse) -> Bool {
        state.withLockedValue { state in
            guard state == .running else { return false }
            state = .answeredEarly
            _ = ResponseRecords.write(head: response.head(), body: response.body, requestId: requestId, to: connection)
            // nginx has the whole answer. The connection stays open until the request thread
            // closes it, so that its descriptor cannot be reused under this thread; a responder
            // still reading the body meanwhile gets end-of-file.
            shutdown(connection, Int32(SHUT_RDWR))
            return true
        }
    }

    /// Called once the responder returned: true when its answer is still to be written.
    func finish() -> Bool {
        state.withLockedValue { state in
            guard state == .running else { return false }
            state = .finished
            return true
        }
    }
}
