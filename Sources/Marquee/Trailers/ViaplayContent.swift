/// Reads what the chain needs from a Viaplay content API document.
enum ViaplayContent {
    /// The film's IMDb id at `_embedded["viaplay:blocks"][0]._embedded["viaplay:product"].content.imdb.id`,
    /// nil when the document has none (or not in the `tt` + digits form).
    static func imdbId(in body: [UInt8]) throws(UpstreamError) -> String? {
        guard case .object(let document)? = try? JSONReader.parse(body) else {
            throw .malformed("the Viaplay document is not a JSON object")
        }
        guard case .array(let blocks)? = document["_embedded"]?["viaplay:blocks"],
              case .string(let id)? = blocks.first?["_embedded"]?["viaplay:product"]?["content"]?["imdb"]?["id"],
              isIMDbId(id) else { return nil }
        return id
    }

    static func isIMDbId(_ id: String) -> Bool {
        id.hasPrefix("tt") && (7...14).contains(id.utf8.count) && id.utf8.dropFirst(2).allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
