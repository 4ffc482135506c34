-- The content-event queue as the cluster's: an event posted to any host is durable here once
-- answered 202, and whichever host holds the consumer role processes it, once in effect.

-- One row per film URL, keyed by the digest of its normalised form: the key makes a repeated
-- event a duplicate, as the embedded store's queue does. A parked row stays (parked_at set)
-- until an operator requeues it or a new event for the URL does. A consumer claims a due row
-- for a short while (claimed_by, claimed_until) with FOR UPDATE SKIP LOCKED, in a transaction
-- of its own, and calls the upstreams with no transaction open; a claim whose holder died
-- runs out and the row is due again, while a write by a holder whose claim was taken over
-- matches no row and changes nothing.
CREATE TABLE content_events (
    digest        text PRIMARY KEY,
    url           text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL,
    queued_at     timestamptz NOT NULL,
    last_error    text,
    parked_at     timestamptz,
    claimed_by    text,
    claimed_until timestamptz
);
-- The consumer's claim looks only at waiting rows, oldest due first.
CREATE INDEX content_events_due ON content_events (next_at) WHERE parked_at IS NULL;

-- Totals since the queue began, which rows cannot tell once their events are gone. Each is
-- one row, updated in the transaction that accepts or completes the events it counts.
CREATE TABLE content_event_counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL DEFAULT 0
);
INSERT INTO content_event_counters (name) VALUES ('accepted'), ('duplicates'), ('processed');
