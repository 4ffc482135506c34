import Foundation
import Synchronization

/// A named loop on its own thread (watchdog, store maintenance, feature consumers) that
/// stops between rounds when asked.
public final class BackgroundThread: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let exited = Atomic<Bool>(false)
    public let name: String

    /// Runs `round` every `interval` until `stop()`.
    public init(name: String, interval: Duration, round: @escaping @Sendable () -> Void) {
        self.name = name
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                round()
                var left = interval
                while left > .zero && !stopped.load(ordering: .acquiring) {
                    let step = min(left, .milliseconds(50))
                    Thread.sleep(forTimeInterval: Double(step.components.seconds) + Double(step.components.attoseconds) / 1e18)
                    left -= step
                }
            }
            exited.store(true, ordering: .releasing)
        }
        thread.name = name
        thread.start()
    }

    public func stop() {
        stopped.store(true, ordering: .releasing)
    }

    public var isRunning: Bool { !exited.load(ordering: .acquiring) }
}
