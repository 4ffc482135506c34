-- Stream grants, heartbeats and releases as one statement each. A grant used to hold the
-- user's row lock across a round trip to the worker (lock and read, decide, write and commit):
-- every grant for one user queued behind that round trip, so 300 grants at once for one user
-- outwaited the statement timeout, and each cycle cost four round trips. Deciding in the
-- server holds the lock only for the decision and the commit.
--
-- The rules are StreamState's (Sources/Marquee/Users/StreamState.swift): expired leases never
-- count; a stream already active is renewed and takes no new slot; the limit is the user's
-- plan's. Times are milliseconds since the epoch on the database's clock, as in 0001.

-- The user's leases after the decision, one row each (a refused grant: the active ones), with
-- `outcome` (`granted`, `renewed`, `refused`; `unknown_user` with no lease) and `subject` on
-- the lease the call was about. `plans` are lowercased and trimmed, as the workers compare them.
CREATE FUNCTION stream_grant(user_id text, stream text, lease_ms bigint, default_limit int, plans text[], limits int[])
RETURNS TABLE (outcome text, stream_limit int, expired int, lease_stream text, started_at bigint, expires_at bigint, subject boolean)
LANGUAGE plpgsql AS $$
DECLARE
    plan text;
    now_ms bigint;
    stream_key text := lower(stream);
    verdict text;
    found_limit int;
    pruned int;
    active int;
BEGIN
    SELECT u.subscription INTO plan FROM users u WHERE u.id = stream_grant.user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_user'::text, 0, 0, NULL::text, NULL::bigint, NULL::bigint, false;
        RETURN;
    END IF;
    now_ms := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    found_limit := coalesce(limits[array_position(plans, lower(btrim(plan, E' \t\n\r\f\v')))], default_limit);
    DELETE FROM user_streams s WHERE s.user_id = stream_grant.user_id AND s.expires_at <= now_ms;
    GET DIAGNOSTICS pruned = ROW_COUNT;
    UPDATE user_streams s SET expires_at = now_ms + lease_ms WHERE s.user_id = stream_grant.user_id AND s.key = stream_key;
    IF FOUND THEN
        verdict := 'renewed';
    ELSE
        SELECT count(*) INTO active FROM user_streams s WHERE s.user_id = stream_grant.user_id;
        IF active >= found_limit THEN
            verdict := 'refused';
        ELSE
            INSERT INTO user_streams (user_id, key, stream, started_at, expires_at)
            VALUES (stream_grant.user_id, stream_key, stream_grant.stream, now_ms, now_ms + lease_ms);
            verdict := 'granted';
        END IF;
    END IF;
    IF verdict <> 'refused' THEN
        UPDATE users u SET last_online = now_ms WHERE u.id = stream_grant.user_id;
    END IF;
    RETURN QUERY
        SELECT verdict, found_limit, pruned, s.stream, s.started_at, s.expires_at, s.key = stream_key
        FROM user_streams s WHERE s.user_id = stream_grant.user_id ORDER BY s.started_at;
END
$$;

-- The heartbeat (`lease_ms` > 0) or the release (`lease_ms` = 0) of one live stream:
-- `done` with the lease (a release: the lease as it was), `not_active`, or `unknown_user`.
CREATE FUNCTION stream_touch(user_id text, stream text, lease_ms bigint)
RETURNS TABLE (outcome text, lease_stream text, started_at bigint, expires_at bigint)
LANGUAGE plpgsql AS $$
DECLARE
    now_ms bigint;
    stream_key text := lower(stream);
    touched user_streams%ROWTYPE;
BEGIN
    PERFORM 1 FROM users u WHERE u.id = stream_touch.user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_user'::text, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    now_ms := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    IF lease_ms > 0 THEN
        UPDATE user_streams s SET expires_at = now_ms + lease_ms
        WHERE s.user_id = stream_touch.user_id AND s.key = stream_key AND s.expires_at > now_ms
        RETURNING s.* INTO touched;
    ELSE
        DELETE FROM user_streams s
        WHERE s.user_id = stream_touch.user_id AND s.key = stream_key AND s.expires_at > now_ms
        RETURNING s.* INTO touched;
    END IF;
    IF touched.user_id IS NULL THEN
        RETURN QUERY SELECT 'not_active'::text, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    UPDATE users u SET last_online = now_ms WHERE u.id = stream_touch.user_id;
    RETURN QUERY SELECT 'done'::text, touched.stream, touched.started_at, touched.expires_at;
END
$$;
