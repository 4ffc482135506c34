-- Several hosts, one database: what keeps the upstreams' quotas and the pool-wide roles
-- cluster-wide. Times are the database's clock, so hosts with skewed clocks still agree.

-- A named lease held by one process of the whole cluster until expires_at: a role (the
-- trailers refresher) or one fetch of an upstream answer (`fill/<key>`). Taken and renewed in
-- one statement each, so no session state is needed.
CREATE TABLE cluster_leases (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Upstream answers shared by every host (trailer lookup steps, the movies catalogue), each
-- with its own time to live. Hosts serve from their LMDB copies; this table is read on a
-- host's miss, before it calls the upstream.
CREATE TABLE upstream_answers (
    key        text PRIMARY KEY,
    value      bytea NOT NULL,
    fetched_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX upstream_answers_expiry ON upstream_answers (expires_at);
