-- s2s_tracking install script, part 32: what stands for a foreign key from
-- s2s.deliveries.endpoint to s2s.endpoints.
--
-- The foreign key's check locked the endpoint's row for every delivery, a cost paid in
-- the shop's checkout; instead, whoever enqueues to an endpoint holds a shared lock on its
-- name until commit, and deleting or renaming an endpoint takes that lock exclusively
-- (src/endpoint_lock.c). The orders trigger takes it in C; s2s.track_event calls
-- s2s_private.hold_endpoint. The guards below, with the rename in endpoints_guard
-- (30_endpoints.sql), keep what the foreign key kept: no delivery names an endpoint that
-- does not exist.

CREATE FUNCTION s2s_private.hold_endpoint(name text) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_hold_endpoint';
COMMENT ON FUNCTION s2s_private.hold_endpoint(text) IS
    'Before enqueuing to an endpoint: holds it against deletion and renaming until commit; raises if it does not exist.';

CREATE FUNCTION s2s_private.lock_endpoint_for_change(name text) RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_lock_endpoint_for_change';
COMMENT ON FUNCTION s2s_private.lock_endpoint_for_change(text) IS
    'Before deleting or renaming an endpoint: waits for the transactions enqueuing to it; says whether any delivery references it.';

CREATE FUNCTION s2s_private.carry_endpoint_rename(old_name text, new_name text) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_carry_endpoint_rename';
COMMENT ON FUNCTION s2s_private.carry_endpoint_rename(text, text) IS
    'When an endpoint is renamed: waits for the transactions enqueuing to it, then renames it in every delivery.';

-- The orders triggers name their endpoint (src/endpoint_triggers.c): deleting, renaming or
-- re-kinding an endpoint that one of them tracks is refused (2BP01) until
-- s2s.untrack_orders, so that no change here ever makes a checkout fail.
CREATE FUNCTION s2s_private.refuse_tracked_endpoint_change(name text, change text) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_refuse_tracked_endpoint_change';
COMMENT ON FUNCTION s2s_private.refuse_tracked_endpoint_change(text, text) IS
    'Before deleting, renaming or re-kinding an endpoint: waits for the transactions enqueuing to it; raises while an orders trigger tracks it.';

CREATE FUNCTION s2s_private.lock_endpoints_for_truncate() RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_lock_endpoints_for_truncate';
COMMENT ON FUNCTION s2s_private.lock_endpoints_for_truncate() IS
    'Before truncating s2s.endpoints: waits for the transactions enqueuing to any endpoint; raises while an orders trigger tracks one; says whether any delivery exists (fresh snapshot).';

-- An endpoint with deliveries cannot be deleted (as with a foreign key): its history would
-- lose the request it describes. Delete the deliveries first (the worker purges finished
-- ones after s2s_tracking.retention), or disable the endpoint. Nor can an endpoint that an
-- orders trigger tracks.
CREATE FUNCTION s2s_private.endpoints_delete_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM s2s_private.refuse_tracked_endpoint_change(OLD.name, 'delete');
    IF s2s_private.lock_endpoint_for_change(OLD.name) THEN
        RAISE EXCEPTION 'endpoint "%" still has deliveries', OLD.name
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Rows of s2s.deliveries reference this endpoint.',
                  HINT = 'Delete its deliveries first, or disable the endpoint (enabled = false) to keep its history.';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER endpoints_delete_guard
    BEFORE DELETE ON s2s.endpoints
    FOR EACH ROW EXECUTE FUNCTION s2s_private.endpoints_delete_guard();

-- TRUNCATE fires no row trigger: refuse it while an orders trigger tracks an endpoint or
-- any delivery exists, after waiting for the transactions enqueuing to any endpoint (each
-- endpoint's lock, taken exclusively). The endpoints and the deliveries are looked at with
-- a fresh snapshot: at REPEATABLE READ the transaction's own may predate both.
CREATE FUNCTION s2s_private.endpoints_truncate_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF s2s_private.lock_endpoints_for_truncate() THEN
        RAISE EXCEPTION 'cannot truncate s2s.endpoints while s2s.deliveries has rows'
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Truncate s2s.deliveries first.';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER endpoints_truncate_guard
    BEFORE TRUNCATE ON s2s.endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION s2s_private.endpoints_truncate_guard();
