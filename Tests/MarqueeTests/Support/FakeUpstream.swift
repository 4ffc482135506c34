import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The internet services Marquee calls (Viaplay, TMDB, Studio Ghibli), played by one loopback
/// HTTP server that answers from the fixtures. It counts the calls per path, and a test can
/// make any path answer late, answer a status, answer garbage, or hang.
final class FakeUpstream: Sendable {
    enum Behaviour: Sendable {
        case json([UInt8])
        case status(Int, [UInt8])
        /// Answers after `delay`, then behaves as `then`.
        indirect case late(Duration, then: Behaviour)
        /// Never answers; the connection stays open until the client gives up.
        case hang
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: Channel
    private let state = FakeUpstreamState()
    private let stopped = Atomic<Bool>(false)
    let port: Int
    let host: String

    var baseURL: String { "http://\(host):\(port)" }

    /// `host`: where it listens; the multi-host tests give the address their namespaces reach.
    init(host: String = "127.0.0.1") throws {
        self.host = host
        let state = self.state
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(FakeUpstreamHandler(state: state))
                }
            }
        channel = try bootstrap.bind(host: host, port: 0).wait()
        port = channel.localAddress!.port!
        loadFixtures()
    }

    /// Every path answers from the fixtures again, and the counts start from zero.
    func loadFixtures() {
        var routes: [String: Behaviour] = [:]
        routes["/pc-se/film/arrival-2016"] = .json(Self.fixture("viaplay/pc-se-film-arrival-2016.json"))
        routes["/3/find/tt2543164"] = .json(Self.fixture("tmdb/find-tt2543164.json"))
        routes["/3/movie/329865/videos"] = .json(Self.fixture("tmdb/movie-329865-videos.json"))
        let ghibli = Self.ghibliData()
        routes["/films"] = .json(Self.encode(ghibli["films"]!))
        routes["/people"] = .json(Self.encode(ghibli["people"]!))
        state.lock.withLock { $0 = (routes, [:]) }
    }

    func set(_ path: String, _ behaviour: Behaviour) {
        state.lock.withLock { $0.routes[path] = behaviour }
    }

    func calls(_ path: String) -> Int {
        state.lock.withLock { $0.calls[path] ?? 0 }
    }

    func resetCalls() {
        state.lock.withLock { $0.calls = [:] }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    static func fixture(_ name: String) -> [UInt8] {
        let url = TestPaths.repository.appendingPathComponent("Tests/MarqueeTests/Fixtures/\(name)")
        return Array(try! Data(contentsOf: url))
    }

    /// data.json as a dictionary of arrays: films, people, locations, species, vehicles.
    static func ghibliData() -> [String: [[String: Any]]] {
        let object = try! JSONSerialization.jsonObject(with: Data(fixture("ghibli/data.json")))
        return object as! [String: [[String: Any]]]
    }

    static func encode(_ value: Any) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: value))
    }
}

final class FakeUpstreamState: Sendable {
    let lock = Mutex<(routes: [String: FakeUpstream.Behaviour], calls: [String: Int])>(([:], [:]))
}

private final class FakeUpstreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: FakeUpstreamState
    private var path = "/"

    init(state: FakeUpstreamState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "/")
        case .body:
            break
        case .end:
            let path = self.path
            let behaviour = state.lock.withLock { state -> FakeUpstream.Behaviour in
                state.calls[path, default: 0] += 1
                return state.routes[path] ?? .status(404, Array(#"{"status_message":"not found"}"#.utf8))
            }
            respond(context: context, behaviour)
        }
    }

    private func respond(context: ChannelHandlerContext, _ behaviour: FakeUpstream.Behaviour) {
        switch behaviour {
        case .hang:
            return
        case .late(let delay, let then):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .nanoseconds(delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) {
                let (handler, context) = loopBound.value
                handler.respond(context: context, then)
            }
        case .json(let body):
            write(context: context, status: 200, body: body)
        case .status(let status, let body):
            write(context: context, status: status, body: body)
        }
    }

    private func write(context: ChannelHandlerContext, status: Int, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
