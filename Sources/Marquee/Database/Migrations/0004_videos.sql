-- The video catalogue and its visits, once a database is configured: every host answers the
-- same catalogue and adds to the same counts. Each host still records a read in its own LMDB
-- outbox, so that a video read never waits on the database; the host's mover brings the
-- outbox here in batches.

-- The answer of GET /video/{videoId}, kept as the exact JSON text the API sends (`json`, not
-- `jsonb`: jsonb would reorder the keys and drop the `_id`-first layout clients were given).
CREATE TABLE videos (
    video_id   text PRIMARY KEY,
    body       json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Moved visits, the newest 100 per video (the mover trims in the transaction that adds):
-- the count below keeps the total. The visit id is fixed when the read happens, so moving a
-- visit again inserts nothing. No foreign key to videos: the mover must never wait on a
-- catalogue write, and a visit is a record of a read that happened whatever the catalogue
-- says later. Times are milliseconds since the epoch, from the reading host's clock.
CREATE TABLE video_visits (
    visit_id   text PRIMARY KEY,
    video_id   text NOT NULL,
    at         bigint NOT NULL,
    ip         text NOT NULL,
    user_agent text NOT NULL
);
-- The order GET /api/v1/videos/{videoId}/visits answers, and the one the trim keeps.
CREATE INDEX video_visits_recent ON video_visits (video_id, at DESC, visit_id);

-- Every visit ever moved, per video; raised only by the visits an insert actually added.
CREATE TABLE video_visit_counts (
    video_id text PRIMARY KEY,
    count    bigint NOT NULL
);

-- The last batch each host's outbox committed here. A host claims a batch under a number in
-- its LMDB before the transaction, and deletes it from its outbox after the commit: a host
-- that died in between sends the same batch again, and this row says it is already in.
-- The visit ids alone cannot say so: the trim may have deleted them already.
CREATE TABLE video_visit_movers (
    mover_id text PRIMARY KEY,
    batch    bigint NOT NULL
);
