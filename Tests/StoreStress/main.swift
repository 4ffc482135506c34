// A separate process that hammers a store, so the tests can run several at once and kill them.
import LMDBStore

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    print("usage: StoreStress increment DIR KEY COUNT | count DIR NAME COUNT | write-forever DIR")
    exit(2)
}
let store = try Store.open(StoreOptions(directory: arguments[2], maxBytes: 64 << 20))
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
default:
    print("unknown command \(arguments[1])")
    exit(2)
}
