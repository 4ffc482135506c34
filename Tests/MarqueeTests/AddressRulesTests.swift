import FastCGI
@testable import Marquee
import Testing

@Suite("Address rules and the routed path")
struct AddressRulesTests {
    @Test("IPv4 and IPv6 ranges parse and match, IPv4-mapped IPv6 as IPv4")
    func networks() throws {
        let private10 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(private10.contains(try #require(IPAddress("10.255.1.2"))))
        #expect(!private10.contains(try #require(IPAddress("11.0.0.1"))))
        #expect(private10.contains(try #require(IPAddress("::ffff:10.0.0.1"))))
        let odd = try #require(IPNetwork("172.16.0.0/12"))
        #expect(odd.contains(try #require(IPAddress("172.31.255.255"))))
        #expect(!odd.contains(try #require(IPAddress("172.32.0.0"))))
        let single = try #require(IPNetwork("127.0.0.1"))
        #expect(single.prefixBits == 32 && single.description == "127.0.0.1")
        #expect(!single.contains(try #require(IPAddress("127.0.0.2"))))
        let v6 = try #require(IPNetwork("fd00::/8"))
        #expect(v6.contains(try #require(IPAddress("fd12:3456::1"))))
        #expect(!v6.contains(try #require(IPAddress("fe80::1"))))
        #expect(!v6.contains(try #require(IPAddress("10.0.0.1"))))
        #expect(try #require(IPNetwork("0:0::1")).contains(try #require(IPAddress("::1"))))
        #expect(try #require(IPNetwork("::/0")).contains(try #require(IPAddress("2001:db8::1"))))
        #expect(try #require(IPNetwork("0.0.0.0/0")).contains(try #require(IPAddress("203.0.113.9"))))
        #expect(try #require(IPNetwork("2001:db8::/32")).description == "2001:db8::/32")
        for bad in ["", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0", "10.0.0.256",
                    "example.com", "10.0.0.0/ 8", "fe80::1%eth0", "1.2.3.4/٨"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
        guard case .success(let list) = IPNetwork.list("127.0.0.1, ::1 10.0.0.0/8") else {
            Issue.record("the list should parse")
            return
        }
        #expect(list.map(\.description) == ["127.0.0.1", "::1", "10.0.0.0/8"])
        guard case .failure(let error) = IPNetwork.list("127.0.0.1,10.0.0.0/99") else {
            Issue.record("the list should be refused")
            return
        }
        #expect(error.entry == "10.0.0.0/99")
    }

    @Test("loopback means 127.0.0.1 and ::1; the legacy rule follows the setting and the open switch")
    func callerRules() throws {
        let defaults = try Settings(SettingsReader(environment: [:]))
        #expect(defaults.internalNetworks.map(\.description) == ["127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])
        #expect(defaults.legacyUsers == .internal)
        for address in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            #expect(CallerRule.loopback.admits(remoteAddress: address, settings: defaults), "\(address)")
        }
        for address in ["127.0.0.2", "10.0.0.1", "203.0.113.9", "", "localhost", nil] as [String?] {
            #expect(!CallerRule.loopback.admits(remoteAddress: address, settings: defaults), "\(address ?? "nil")")
        }
        for address in ["127.0.0.2", "10.1.2.3", "172.20.0.1", "192.168.1.1", "::1"] {
            #expect(CallerRule.legacyUsers.admits(remoteAddress: address, settings: defaults), "\(address)")
        }
        for address in ["203.0.113.9", "172.32.0.1", "fd00::1", "garbage"] {
            #expect(!CallerRule.legacyUsers.admits(remoteAddress: address, settings: defaults), "\(address)")
        }
        let narrowed = try Settings(SettingsReader(environment: ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1"]))
        #expect(!CallerRule.legacyUsers.admits(remoteAddress: "127.0.0.2", settings: narrowed))
        let open = try Settings(SettingsReader(environment: ["MARQUEE_INTERNAL_NETWORKS": "127.0.0.1", "MARQUEE_LEGACY_USERS": "OPEN"]))
        #expect(CallerRule.legacyUsers.admits(remoteAddress: "203.0.113.9", settings: open))
        #expect(!CallerRule.loopback.admits(remoteAddress: "203.0.113.9", settings: open))
        #expect(throws: SettingsError.self) { try Settings(SettingsReader(environment: ["MARQUEE_INTERNAL_NETWORKS": "10.0.0.0/8;"])) }
        #expect(throws: SettingsError.self) { try Settings(SettingsReader(environment: ["MARQUEE_LEGACY_USERS": "sometimes"])) }
    }

    @Test("path parameters reach the handler as routed, never decoded a second time")
    func parametersDecodedOnce() {
        var router = Router()
        router.get("/api/v1/users/{id}") { _ in FastCGIResponse(status: 200) }
        // nginx has decoded %252541 to %2541 once already; the router must not make it %41 or A.
        for (path, expected) in [("/api/v1/users/%2541", "%2541"), ("/api/v1/users/%41", "%41"), ("/api/v1/users/a+b", "a+b"),
                                 ("/api/v1/users/a b", "a b"), ("/api/v1/users/a?b", "a?b")] {
            guard case .found(_, _, let parameters) = router.match(method: "GET", path: path) else {
                Issue.record("\(path) should match")
                continue
            }
            #expect(parameters["id"] == expected, "\(path)")
        }
    }
}
