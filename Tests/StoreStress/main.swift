// A separate process that hammers a store, so the tests can run several at once and kill them.
import LMDBStore

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: StoreStress increment DIR KEY COUNT | count DIR NAME COUNT | write-forever DIR | hold-write DIR SECONDS [MAP_MB]")
    exit(2)
}
// hold-write opens a worker's store: the same map size as the worker, so that neither grows it.
let mapBytes = arguments[1] == "hold-write" && arguments.count > 4 ? Int(arguments[4])! << 20 : 64 << 20
let store = try Store.open(StoreOptions(directory: arguments[2], maxBytes: mapBytes))
switch arguments[1] {
case "increment":
    for _ in 0..<Int(arguments[4])! {
        try store.increment(arguments[3])
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
        try store.write { txn in
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
    try store.write { _ in
        print("holding"); fflush(nil)
        usleep(UInt32(Double(arguments[3])! * 1_000_000))
    }
    print("released"); fflush(nil)
default:
    print("unknown command \(arguments[1])")
    exit(2)
}
