// A separate process that hammers a store, so the tests can run several at once and kill them.
import LMDBStore

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: StoreStress increment DIR KEY COUNT | count DIR NAME COUNT | write-forever DIR | hold-write DIR SECONDS [MAP_MB] | fill DIR MAP_MB NAME COUNT [WRITERS]")
    exit(2)
}
// Every process of one store must open it with the same map size: hold-write opens a worker's
// store, so it takes the worker's, and fill names the small map it fills.
let mapBytes = switch arguments[1] {
case "hold-write" where arguments.count > 4: Int(arguments[4])! << 20
case "fill": Int(arguments[3])! << 20
default: 64 << 20
}
let store = try Store.open(StoreOptions(directory: arguments[2], maxBytes: mapBytes))
switch arguments[1] {
case "increment":
    for _ in 0..<Int(arguments[4])! {
        try store.increment(arguments[3], as: .state)
    }
case "count":
    // Many turns, so that the processes overlap: a lost update would leave the total short.
    let counter = try store.counter(arguments[3])
    var last: Int64 = 0
    for _ in 0..<Int(arguments[4])! {
        let turn = counter.next()
        guard turn > last else {
            print("turn \(turn) after \(last)")
            exit(1)
        }
        last = turn
    }
case "write-forever":
    var round = 0
    while true {
        try store.write(.state) { txn in
            for slot in 0..<50 {
                try txn.put("crash/\(slot)", Array(repeating: UInt8(truncatingIfNeeded: round), count: 2048))
            }
            _ = try txn.increment("crash/rounds")
        }
        round += 1
        if round == 1 { print("writing"); fflush(nil) }
    }
case "hold-write":
    // Holds the pool-wide write lock, as a stuck writer would, then lets go without writing.
    try store.write(.state) { _ in
        print("holding"); fflush(nil)
        usleep(UInt32(Double(arguments[3])! * 1_000_000))
    }
    print("released"); fflush(nil)
case "fill":
    // State writes of 256 bytes to 3 KiB until and past a full map. Each answer is one line on stdout:
    // `ok`, or `full` for a clear StoreError; anything else ends the process with status 1.
    let name = arguments[4]
    // Processes started one after another begin together, so that their writes interleave:
    // each counts itself in and waits for the others, however late a busy machine starts it
    // (a start time on the clock let one begin after the others had filled the map).
    if arguments.count > 6, let writers = Int64(arguments[6]) {
        _ = try store.increment("fill-ready", as: .state)
        while (try store.get("fill-ready").flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0) < writers {
            usleep(1_000)
        }
    }
    var full = 0
    var stored = 0
    for index in 0..<Int(arguments[5])! {
        let size = 256 * (1 + index % 12)
        do {
            try store.put("fill/\(name)/\(index)", Array(repeating: UInt8(truncatingIfNeeded: index), count: size), as: .state)
            stored += 1
        } catch let error as StoreError where error.isFull {
            full += 1
        } catch {
            print("unexpected \(error)")
            exit(1)
        }
    }
    print("stored \(stored) full \(full)")
default:
    print("unknown command \(arguments[1])")
    exit(2)
}
