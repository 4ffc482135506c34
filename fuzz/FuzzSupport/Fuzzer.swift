import CLibFuzzer
import Foundation

/// Runs libFuzzer on `body` with the process's arguments, and exits with its status. `body`
/// gets each input and stops the process (`check`, a trap) when an invariant breaks: that is
/// how libFuzzer learns of a finding and writes the input out. libFuzzer calls back on the
/// thread that started it, the main one, so `body` may use the target's top-level state.
@MainActor
public func runFuzzer(_ body: @escaping @MainActor ([UInt8]) -> Void) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}

/// Also under libFuzzer's own name: the runtime's unused main still refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    MainActor.assumeIsolated { target(bytes) }
    return 0
}

/// Set once, before the driver starts.
nonisolated(unsafe) private var target: @MainActor ([UInt8]) -> Void = { _ in }

/// Stops the fuzzer on a broken invariant, naming it; unlike `assert`, also in release builds.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                  file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}
