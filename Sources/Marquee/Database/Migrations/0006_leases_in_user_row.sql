-- A user's stream leases move into the user's own row, as an array. Every grant, heartbeat and
-- release already took that row's lock; with the leases in a table of their own it then ran up
-- to six more statements on that table (prune, renew, count, insert and its foreign-key check,
-- read back), and the table's insert-and-delete churn left dead rows that each of them walked.
-- Measured with pgbench on 2 cores, a grant and a release cost about twice the database CPU
-- that this layout does: now the lock is one read of the row, the decision is made in
-- memory, and the write is one update of the same row (HOT: no index changes).
--
-- The rules stay StreamState's (Sources/Marquee/Users/StreamState.swift), as in 0003.

CREATE TYPE stream_lease AS (key text, stream text, started_at bigint, expires_at bigint);

ALTER TABLE users ADD COLUMN streams stream_lease[] NOT NULL DEFAULT '{}';
-- Room on each page for the row's next version, so that lease writes stay HOT updates.
ALTER TABLE users SET (fillfactor = 80);

UPDATE users u SET streams = s.leases
FROM (SELECT user_id, array_agg(ROW(key, stream, started_at, expires_at)::stream_lease ORDER BY started_at) AS leases
      FROM user_streams GROUP BY user_id) s
WHERE s.user_id = u.id;

DROP FUNCTION stream_grant(text, text, bigint, int, text[], int[]);
DROP FUNCTION stream_touch(text, text, bigint);
DROP TABLE user_streams;

-- As 0003's: the user's leases after the decision, in the order they started, with `outcome`
-- (`granted`, `renewed`, `refused`; `unknown_user` with no lease) and `subject` on the lease
-- the call was about. A refusal writes only when it pruned expired leases.
CREATE FUNCTION stream_grant(user_id text, stream text, lease_ms bigint, default_limit int, plans text[], limits int[])
RETURNS TABLE (outcome text, stream_limit int, expired int, lease_stream text, started_at bigint, expires_at bigint, subject boolean)
LANGUAGE plpgsql AS $$
DECLARE
    plan text;
    leases stream_lease[];
    kept stream_lease[] := '{}';
    lease stream_lease;
    now_ms bigint;
    stream_key text := lower(stream);
    verdict text;
    found_limit int;
    pruned int := 0;
    renewed boolean := false;
BEGIN
    SELECT u.subscription, u.streams INTO plan, leases FROM users u WHERE u.id = stream_grant.user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_user'::text, 0, 0, NULL::text, NULL::bigint, NULL::bigint, false;
        RETURN;
    END IF;
    now_ms := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    found_limit := coalesce(limits[array_position(plans, lower(btrim(plan, E' \t\n\r\f\v')))], default_limit);
    FOREACH lease IN ARRAY leases LOOP
        IF lease.expires_at <= now_ms THEN
            pruned := pruned + 1;
            CONTINUE;
        END IF;
        IF lease.key = stream_key THEN
            lease.expires_at := now_ms + lease_ms;
            renewed := true;
        END IF;
        kept := kept || lease;
    END LOOP;
    IF renewed THEN
        verdict := 'renewed';
    ELSIF cardinality(kept) >= found_limit THEN
        verdict := 'refused';
    ELSE
        kept := kept || ROW(stream_key, stream_grant.stream, now_ms, now_ms + lease_ms)::stream_lease;
        verdict := 'granted';
    END IF;
    IF verdict <> 'refused' THEN
        UPDATE users u SET streams = kept, last_online = now_ms WHERE u.id = stream_grant.user_id;
    ELSIF pruned > 0 THEN
        UPDATE users u SET streams = kept WHERE u.id = stream_grant.user_id;
    END IF;
    outcome := verdict;
    stream_limit := found_limit;
    expired := pruned;
    FOREACH lease IN ARRAY kept LOOP
        lease_stream := lease.stream;
        started_at := lease.started_at;
        expires_at := lease.expires_at;
        subject := lease.key = stream_key;
        RETURN NEXT;
    END LOOP;
END
$$;

-- As 0003's: the heartbeat (`lease_ms` > 0) or the release (`lease_ms` = 0) of one live
-- stream: `done` with the lease (a heartbeat: as renewed; a release: as it was),
-- `not_active`, or `unknown_user`.
CREATE FUNCTION stream_touch(user_id text, stream text, lease_ms bigint)
RETURNS TABLE (outcome text, lease_stream text, started_at bigint, expires_at bigint)
LANGUAGE plpgsql AS $$
DECLARE
    leases stream_lease[];
    kept stream_lease[] := '{}';
    lease stream_lease;
    touched stream_lease;
    now_ms bigint;
    stream_key text := lower(stream);
BEGIN
    SELECT u.streams INTO leases FROM users u WHERE u.id = stream_touch.user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_user'::text, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    now_ms := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    FOREACH lease IN ARRAY leases LOOP
        IF lease.key = stream_key AND lease.expires_at > now_ms THEN
            IF lease_ms = 0 THEN
                touched := lease;
                CONTINUE;
            END IF;
            lease.expires_at := now_ms + lease_ms;
            touched := lease;
        END IF;
        kept := kept || lease;
    END LOOP;
    IF touched.key IS NULL THEN
        RETURN QUERY SELECT 'not_active'::text, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    UPDATE users u SET streams = kept, last_online = now_ms WHERE u.id = stream_touch.user_id;
    RETURN QUERY SELECT 'done'::text, touched.stream, touched.started_at, touched.expires_at;
END
$$;
