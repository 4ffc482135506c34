import ArgumentParser

@main
struct MarqueeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marquee",
        abstract: "Marquee: the streaming service's public API, as FastCGI workers behind nginx.",
        subcommands: [ServeCommand.self, PoolCommand.self, StoreCommand.self, UsersCommand.self, MoviesCommand.self, VideosCommand.self, TrailersCommand.self, ConfigCommand.self, DatabaseCommand.self]
    )
}
