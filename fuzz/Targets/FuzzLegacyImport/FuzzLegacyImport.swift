import Foundation
import FuzzSupport
import LMDBStore
@testable import Marquee

/// The legacy user import, into a real store in a scratch directory (TMPDIR): no crash on any
/// file; a file it takes gives one report line per user, each imported user is in the store with
/// the file's name and subscription, and a second run imports nothing.
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-legacy-import-\(getpid())")
try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
let store = try! Store.open(StoreOptions(directory: directory.path, maxBytes: 1 << 30, sync: .none))
let settings = SettingsReader(environment: ["MARQUEE_STREAM_LIMIT": "3", "MARQUEE_STREAM_LEASE_SECONDS": "90"])
let users = LMDBUserStore(store: store)

runFuzzer { bytes in
    let data = Data(bytes)
    let report: LegacyImport.Report
    do {
        report = try LegacyImport.run(data: data, store: store, settings: settings)
    } catch is LegacyImport.FileError {
        return
    } catch {
        fatalError("the import failed other than on the file: \(error)")
    }
    guard case .object(let top)? = try? JSONReader.parse(bytes), case .object(let listed)? = top["Users"] else {
        fatalError("a file without a Users object was imported")
    }
    check(report.entries.count == listed.count, "\(listed.count) users in the file, \(report.entries.count) in the report")
    check(report.entries.map(\.id) == listed.keys.sorted(), "the report's ids are not the file's, in order")
    for entry in report.entries where entry.outcome == .imported {
        guard let stored = try? users.user(entry.id) else { fatalError("\(entry.id) was imported but is not in the store") }
        check(listed[entry.id]?["Name"] == .string(stored.record.name) && listed[entry.id]?["Subscription"] == .string(stored.record.subscription),
              "\(entry.id) is stored as \(stored.record.name) / \(stored.record.subscription)")
    }
    guard let second = try? LegacyImport.run(data: data, store: store, settings: settings) else { fatalError("the second run failed") }
    check(second.importedCount == 0, "the second run imported \(second.importedCount)")
}
