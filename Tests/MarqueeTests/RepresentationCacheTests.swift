import Foundation
import LMDBStore
import Testing
@testable import Marquee

@Suite("Movies representation cache")
struct RepresentationCacheTests {
    @Test("a copy serves until another worker's commit bumps the generation, and never past a second without a bump")
    func followsTheStore() async throws {
        let directory = TestPaths.temporaryDirectory("representation-cache")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreOptions(directory: directory.path, maxBytes: 16 << 20))
        let reader = RepresentationCache(store: store)
        let writer = RepresentationCache(store: store)
        func put(_ text: String) throws {
            try store.put("movies/json", Representation(body: Array(text.utf8), refreshedAt: StoreClock.nowMillis(), stale: false).encoded(), as: .disposable)
        }
        func served() throws -> String? {
            try reader.representation("movies/json").map { String(decoding: $0.body, as: UTF8.self) }
        }

        #expect(try served() == nil)
        try put("first")
        #expect(try served() == "first")

        // A commit followed by the bump shows at once.
        try put("second")
        writer.replaced()
        let copied = ContinuousClock.now
        #expect(try served() == "second")

        // A commit whose writer never bumped (it died in between) shows within a second.
        try put("third")
        let stillCopy = try served()
        if ContinuousClock.now - copied < .milliseconds(Int(RepresentationCache.maxAgeMillis)) {
            #expect(stillCopy == "second", "the copy serves while the generation is unchanged")
        }
        try await Task.sleep(for: .milliseconds(Int(RepresentationCache.maxAgeMillis) + 100))
        #expect(try served() == "third")
    }
}
