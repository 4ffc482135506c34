/// One YouTube trailer of a film, as every route shape reports it.
public struct Trailer: Codable, Sendable, Equatable {
    public var url: String
    /// The YouTube video id.
    public var key: String
    public var name: String
    /// ISO 639-1, as TMDB gives it.
    public var language: String?
    /// ISO 3166-1, as TMDB gives it.
    public var country: String?
    /// The vertical resolution TMDB lists.
    public var size: Int?

    public init(key: String, name: String, language: String?, country: String?, size: Int?) {
        self.url = "https://www.youtube.com/watch?v=\(key)"
        self.key = key
        self.name = name
        self.language = language
        self.country = country
        self.size = size
    }

    /// The short link of the first earlier service.
    public var shortURL: String { "https://youtu.be/\(key)" }

    /// YouTube ids are short and URL-safe; anything else is not put into a link.
    static func isValidKey(_ key: String) -> Bool {
        (1...64).contains(key.utf8.count) && key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}
