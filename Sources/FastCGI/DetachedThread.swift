#if canImport(Glibc)
import Glibc
#endif

/// The request threads, the sweeper and the gate's monitor are pthreads of their own, not
/// tasks: they block in epoll, in libfcgi and in the responder's calls, which the Swift
/// concurrency pool must never do.
enum DetachedThread {
    /// Starts `body` on a new detached thread; answers pthread_create's result.
    static func start(_ body: @escaping @Sendable () -> Void) -> Int32 {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        if created != 0 {
            box.release()
        } else {
            pthread_detach(thread)
        }
        return created
    }

    private final class Body {
        let run: @Sendable () -> Void

        init(_ run: @escaping @Sendable () -> Void) {
            self.run = run
        }
    }
}
