/// The byte layout of the users' store records: a version byte, then fixed-width little-endian
/// integers and length-prefixed UTF-8 strings. Every GET and grant decodes one or two records;
/// Foundation's JSONDecoder spent ~10 µs on each, a third of what a whole request may cost at
/// the pool's target rate, while this takes well under one.
struct RecordWriter {
    private(set) var bytes: [UInt8] = []

    init(version: UInt8) {
        bytes.reserveCapacity(128)
        bytes.append(version)
    }

    mutating func integer(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ text: String) {
        let utf8 = text.utf8
        precondition(utf8.count <= Int(UInt16.max), "record strings are validated far below 64 KiB")
        withUnsafeBytes(of: UInt16(utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: utf8)
    }
}

struct RecordReader {
    struct Corrupt: Error, CustomStringConvertible {
        var description: String
    }

    private let bytes: [UInt8]
    private var offset = 0

    /// Reads the version byte and refuses any other than `version`.
    init(_ bytes: [UInt8], version: UInt8) throws(Corrupt) {
        self.bytes = bytes
        guard bytes.first == version else {
            throw Corrupt(description: "record version \(bytes.first.map(String.init) ?? "missing"), expected \(version)")
        }
        offset = 1
    }

    mutating func integer() throws(Corrupt) -> UInt64 {
        try take(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    mutating func string() throws(Corrupt) -> String {
        let length = Int(try take(2).withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self)) })
        return String(decoding: try take(length), as: UTF8.self)
    }

    private mutating func take(_ count: Int) throws(Corrupt) -> ArraySlice<UInt8> {
        guard bytes.count - offset >= count else { throw Corrupt(description: "record truncated at byte \(offset)") }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
}
