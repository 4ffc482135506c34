/// The metric names Marquee publishes (the dashboard and the alert rules in deploy/ are
/// written against them), with the HELP text of each.
enum MetricNames {
    static let requests = "marquee_http_requests_total"
    static let requestDuration = "marquee_http_request_duration_seconds"
    static let inFlight = "marquee_http_requests_in_flight"
    static let threadsBusy = "marquee_worker_threads_busy"
    static let upstreamCalls = "marquee_upstream_calls_total"
    static let upstreamErrors = "marquee_upstream_errors_total"
    static let upstreamDuration = "marquee_upstream_call_duration_seconds"
    static let upstreamJoins = "marquee_upstream_singleflight_joins_total"
    static let upstreamRejections = "marquee_upstream_bulkhead_rejections_total"
    static let cacheHits = "marquee_cache_hits_total"
    static let cacheMisses = "marquee_cache_misses_total"
    static let cacheStaleServes = "marquee_cache_stale_serves_total"
    static let cacheNegativeHits = "marquee_cache_negative_hits_total"
    static let storePrefix = "marquee_store"
    static let contentEventsProcessed = "marquee_content_events_processed_total"
    static let streamGrants = "marquee_stream_grants_total"
    static let streamRefusals = "marquee_stream_refusals_total"
    static let streamExpiries = "marquee_stream_expiries_total"
    static let tokenMints = "marquee_token_mints_total"
    static let tokenVerifications = "marquee_token_verifications_total"
    static let workerStarts = "marquee_worker_starts_total"
    static let workerRestarts = "marquee_worker_restarts_total"

    static let help: [String: String] = [
        requests: "Requests answered by the pool, by route family, method and status class.",
        requestDuration: "Time from reading a request to its answer in the worker, by route family.",
        inFlight: "Requests a worker is answering now.",
        threadsBusy: "Request threads of a worker inside a request, sampled each second.",
        upstreamCalls: "HTTP attempts to an internet service, retries included.",
        upstreamErrors: "Failed calls to an internet service, by kind (timeout, connect, status, decode, bulkhead, other).",
        upstreamDuration: "Duration of one HTTP attempt to an internet service.",
        upstreamJoins: "Lookups that waited on the same lookup already in flight in the pool instead of calling.",
        upstreamRejections: "Lookups refused because the worker's upstream bulkhead was full.",
        cacheHits: "Fresh answers served from a cache.",
        cacheMisses: "Answers a cache did not hold fresh and had computed.",
        cacheStaleServes: "Expired answers served because the upstream failed or was being asked.",
        cacheNegativeHits: "Fresh cached answers that say the thing does not exist.",
        "marquee_store_commit_duration_seconds": "Duration of a store write transaction, commit and flush included.",
        "marquee_store_evictions_total": "Cache entries evicted to make room in the store.",
        "marquee_store_full_refusals_total": "Store writes refused for want of room (MAP_FULL or the reserve).",
        "marquee_store_map_size_bytes": "The store's map size: it never grows past it.",
        "marquee_store_used_bytes": "Bytes of the map in use.",
        "marquee_store_entries": "Entries in the store.",
        "marquee_store_readers": "Reader slots in use in the store's lock file.",
        "marquee_content_events_pending": "Content events waiting to be processed.",
        "marquee_content_events_parked": "Content events parked after their last attempt failed.",
        contentEventsProcessed: "Content events processed.",
        "marquee_visits_outbox_depth": "Visits waiting in the outbox.",
        "marquee_visits_outbox_lag_seconds": "Age of the oldest visit waiting in the outbox.",
        "marquee_queue_oldest_item_age_seconds": "Age of the oldest unprocessed item, by queue.",
        streamGrants: "Streams granted.",
        streamRefusals: "Streams refused because the user's plan limit was reached.",
        streamExpiries: "Stream leases found expired and taken back.",
        tokenMints: "Playback links signed, by scheme.",
        tokenVerifications: "Playback link verifications, by result.",
        "marquee_movies_last_refresh_timestamp_seconds": "When the movies catalogue was last fetched, in seconds since the epoch.",
        "marquee_movies_staleness_seconds": "Age of the movies catalogue served.",
        workerStarts: "Worker processes started, by instance.",
        workerRestarts: "Worker processes started again after an earlier one of the same instance, by instance.",
        "marquee_build_info": "The running build: version and commit.",
        "process_resident_memory_bytes": "Resident memory of a live worker.",
        "process_open_fds": "Open file descriptors of a live worker.",
    ]
}
