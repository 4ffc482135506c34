import CLibFuzzer
import Foundation

/// Runs libFuzzer on `body` with the process's arguments, and exits with its status. `body`
/// gets each input and stops the process (`check`, a trap) when an invariant breaks: that is
/// how libFuzzer learns of a finding and writes the input out.
public func runFuzzer(_ body: @escaping ([UInt8]) -> Void) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}

/// Also under libFuzzer's own name: the runtime's unused main still refers to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// The body is set once, before the driver starts, and libFuzzer calls it from one thread.
nonisolated(unsafe) private var target: ([UInt8]) -> Void = { _ in }

/// Stops the fuzzer on a broken invariant, naming it; unlike `assert`, also in release builds.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                  file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}
