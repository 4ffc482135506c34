/// The rows of one result, in PostgreSQL's text format.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// The count from the command tag (rows inserted, updated, deleted or selected).
    public let affected: Int

    public init(columns: [String], rows: [PostgresRow], affected: Int) {
        self.columns = columns
        self.rows = rows
        self.affected = affected
    }

    public var first: PostgresRow? { rows.first }
    public var isEmpty: Bool { rows.isEmpty }
}

public struct PostgresRow: Sendable {
    public let values: [String?]

    public init(values: [String?]) {
        self.values = values
    }

    public subscript(_ index: Int) -> String? { values[index] }

    public func string(_ index: Int) throws(PostgresError) -> String {
        guard let value = values[index] else { throw PostgresError(.other, message: "column \(index) is null") }
        return value
    }

    public func int64(_ index: Int) throws(PostgresError) -> Int64 {
        guard let text = values[index], let value = Int64(text) else {
            throw PostgresError(.other, message: "column \(index) is not an integer: \(values[index] ?? "null")")
        }
        return value
    }

    public func int(_ index: Int) throws(PostgresError) -> Int { Int(try int64(index)) }

    public func bool(_ index: Int) throws(PostgresError) -> Bool { values[index] == "t" }

    /// A `bytea` column, which the text format sends as `\x` and hex digits.
    public func bytes(_ index: Int) throws(PostgresError) -> [UInt8]? {
        guard let text = values[index] else { return nil }
        return try PostgresRow.decodeHex(text)
    }

    static func decodeHex(_ text: String) throws(PostgresError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw PostgresError(.other, message: "bytea value not in hex format")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else {
                throw PostgresError(.other, message: "bytea value has a bad hex digit")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A `bytea` parameter in the hex text format.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
