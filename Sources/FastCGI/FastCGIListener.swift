import CFastCGI

#if canImport(Glibc)
import Glibc
#endif

/// The listening socket the worker accepts nginx's connections on.
public struct FastCGIListener: Sendable {
    public let fd: Int32
    public let origin: String

    /// The socket systemd passed (`LISTEN_FDS`/`LISTEN_PID`, fd 3), else fd 0 when it is a
    /// listening socket (the FastCGI convention, also used by `marquee pool`), else nil.
    public static func inherited() -> FastCGIListener? {
        if let pid = getenv("LISTEN_PID").map({ String(cString: $0) }), pid_t(pid) == getpid(),
           let count = getenv("LISTEN_FDS").flatMap({ Int32(String(cString: $0)) }), count >= 1 {
            // Not for our children: they would take the variables for their own.
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
            _ = fcntl(3, F_SETFD, FD_CLOEXEC)
            return FastCGIListener(fd: 3, origin: "systemd (fd 3)")
        }
        if isListeningSocket(0) {
            return FastCGIListener(fd: 0, origin: "fd 0")
        }
        return nil
    }

    /// Binds `address`: a unix socket path, or `host:port`. A unix socket gets `mode`,
    /// since libfcgi creates it with the process umask and nginx would be refused.
    public static func bind(_ address: String, mode: mode_t = 0o660, backlog: Int32 = 4096) throws(FastCGIListenerError) -> FastCGIListener {
        let isPath = address.hasPrefix("/") || address.hasPrefix(".")
        if isPath {
            var info = stat()
            if lstat(address, &info) == 0, (info.st_mode & S_IFMT) != S_IFSOCK {
                throw .notASocket(address)
            }
        } else if address.lastIndex(of: ":") == nil || address.hasPrefix(":") {
            // libfcgi binds every interface for ":port"; the socket must stay reachable by nginx alone.
            throw .invalidAddress(address)
        }
        let fd = FCGX_OpenSocket(address, backlog)
        guard fd >= 0 else { throw .bindFailed(address, errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if isPath { chmod(address, mode) }
        return FastCGIListener(fd: fd, origin: address)
    }

    static func isListeningSocket(_ fd: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0
    }
}

public enum FastCGIListenerError: Error, CustomStringConvertible {
    case notASocket(String)
    case invalidAddress(String)
    case bindFailed(String, errno: Int32)

    public var description: String {
        switch self {
        case .notASocket(let path): "\(path) exists and is not a socket"
        case .invalidAddress(let address): "\(address) is neither a socket path nor host:port"
        case .bindFailed(let address, let code): "cannot listen on \(address): \(String(cString: strerror(code)))"
        }
    }
}
