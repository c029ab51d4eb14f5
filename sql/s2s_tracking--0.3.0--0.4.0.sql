-- s2s_tracking upgrade from 0.3.0 to 0.4.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- 0.4.0 keeps every promise at the edges (CHANGELOG.md): the worker runs with a pinned
-- search_path as the extension's owner, stored responses are redacted, privileges are
-- checked before locks, endpoints are closed to track_event by default, tracked endpoints
-- cannot be renamed or deleted out from under their triggers, and the trigger sees every
-- status transition. Each section below brings the statements of sql/install/ verbatim
-- that changed, then their privileges.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.4.0'" to load this file. \quit

-- == worker (security) ==

-- == privileges and track_event ==

-- == tracked endpoints and the orders trigger ==

-- (orders trigger)
-- The tracking triggers fire on every UPDATE, not only on UPDATE OF the status column,
-- which PostgreSQL fires only when the statement names the column: a status set by a
-- shop's own BEFORE trigger was missed (src/track_orders.c). Each trigger that runs
-- s2s.enqueue_conversion on UPDATE OF some columns is made again, the same but for that
-- column list: its name, table, arguments, WHEN clause (a hand-made one), enabled state
-- and comment are kept. The clones on partitions follow their parent's trigger.
DO $$
DECLARE
    t record;
    cols text;
    head text;
    old_events text;
    new_events text;
BEGIN
    FOR t IN
        SELECT tg.oid, tg.tgname, tg.tgrelid, tg.tgtype, tg.tgattr, tg.tgenabled,
               pg_catalog.pg_get_triggerdef(tg.oid) AS def,
               pg_catalog.obj_description(tg.oid, 'pg_trigger') AS comment
          FROM pg_catalog.pg_trigger tg
         WHERE tg.tgfoid = 's2s.enqueue_conversion()'::pg_catalog.regprocedure
           AND tg.tgparentid = 0 AND NOT tg.tgisinternal
           AND (tg.tgtype & 16) <> 0
           AND pg_catalog.array_length(tg.tgattr::pg_catalog.int2[], 1) > 0
         ORDER BY tg.oid
    LOOP
        -- the definition as pg_get_triggerdef spells it, events in its order
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname::text), ', ' ORDER BY k.n)
          INTO cols
          FROM pg_catalog.unnest(t.tgattr::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum;
        head := 'CREATE TRIGGER ' || pg_catalog.quote_ident(t.tgname::text) || ' AFTER ';
        old_events := pg_catalog.concat_ws(' OR ',
            CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
            CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
            'UPDATE OF ' || cols,
            CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END);
        new_events := pg_catalog.concat_ws(' OR ',
            CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
            CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
            'UPDATE',
            CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END);
        IF pg_catalog.left(t.def, pg_catalog.length(head || old_events || ' ON '))
           IS DISTINCT FROM head || old_events || ' ON ' THEN
            RAISE WARNING 'trigger "%" on table % was left as it is', t.tgname, t.tgrelid::regclass
                USING DETAIL = format('Its definition does not read as expected: %s', t.def),
                      HINT = 'Run s2s.track_orders again for this table so that a status set by any means is seen.';
            CONTINUE;
        END IF;
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass);
        EXECUTE head || new_events
                || pg_catalog.substr(t.def, pg_catalog.length(head || old_events) + 1);
        IF t.tgenabled <> 'O' THEN
            EXECUTE format('ALTER TABLE %s %s TRIGGER %I', t.tgrelid::regclass,
                           CASE t.tgenabled WHEN 'D' THEN 'DISABLE'
                                            WHEN 'R' THEN 'ENABLE REPLICA'
                                            ELSE 'ENABLE ALWAYS' END,
                           t.tgname);
        END IF;
        IF t.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', t.tgname, t.tgrelid::regclass,
                           t.comment);
        END IF;
    END LOOP;
END
$$;

-- Deliveries that 0.3.0 skipped hold values cut inside a character (invalid in the
-- database encoding: pg_restore refuses them) and, for a bad currency, a NULL currency
-- that a retry would have replaced by the endpoint's. Their cut character is dropped, as
-- 0.4.0 cuts, and the bad currency, upper-cased in the reason already, goes back to the
-- currency column, where s2s.retry refuses it as 0.4.0's trigger would.
DO $$
DECLARE
    d record;
    enc name := pg_catalog.getdatabaseencoding();
    prefix text := 'The order''s currency "';
    suffix text := '" is not an ISO 4217 code (three letters).';
    raw bytea;
    v text;
    ids text;
    n integer;
BEGIN
    FOR d IN
        SELECT x.id, x.click_ids, x.last_error, x.currency
          FROM s2s.deliveries x
         WHERE x.status = 'skipped' AND x.kind = 'conversion'
           AND (pg_catalog.octet_length(x.click_ids) = 1024
                OR (x.currency IS NULL AND pg_catalog.starts_with(x.last_error, prefix)))
    LOOP
        ids := d.click_ids;
        IF pg_catalog.octet_length(ids) = 1024 THEN
            raw := pg_catalog.textsend(ids);
            ids := NULL;
            n := 1024;
            WHILE ids IS NULL AND n > 1020 LOOP
                BEGIN
                    ids := pg_catalog.convert_from(pg_catalog.substring(raw, 1, n), enc);
                EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
                    n := n - 1;
                END;
            END LOOP;
        END IF;
        v := NULL;
        raw := pg_catalog.textsend(d.last_error);
        -- compared as bytes: the text between them may be invalid
        IF d.currency IS NULL AND pg_catalog.starts_with(d.last_error, prefix)
           AND pg_catalog.octet_length(raw) >= pg_catalog.octet_length(prefix || suffix)
           AND pg_catalog.substring(raw, pg_catalog.octet_length(raw)
                                         - pg_catalog.octet_length(suffix) + 1)
               = pg_catalog.textsend(suffix) THEN
            raw := pg_catalog.substring(raw, pg_catalog.octet_length(prefix) + 1,
                                        pg_catalog.octet_length(raw) - pg_catalog.octet_length(prefix)
                                        - pg_catalog.octet_length(suffix));
            n := pg_catalog.octet_length(raw);
            WHILE v IS NULL AND n >= 0 AND n > pg_catalog.octet_length(raw) - 4 LOOP
                BEGIN
                    v := pg_catalog.convert_from(pg_catalog.substring(raw, 1, n), enc);
                EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
                    n := n - 1;
                END;
            END LOOP;
        END IF;
        UPDATE s2s.deliveries x
           SET click_ids = coalesce(ids, x.click_ids),
               currency = coalesce(v, x.currency),
               last_error = CASE WHEN v IS NULL THEN x.last_error ELSE prefix || v || suffix END
         WHERE x.id = d.id;
    END LOOP;
END
$$;

-- Why a delivery cannot be sent, by the very rules the orders trigger applied when it
-- enqueued it (C, src/delivery_check.c: one copy of the rules), the click IDs judged at
-- judged_at and by the current s2s_tracking.click_ttl / click_max_skew; NULL problem when
-- it can be sent, and then the Affilae click IDs normalised. A NULL endpoint_kind means
-- the endpoint is gone.
CREATE FUNCTION s2s_private.delivery_problem(endpoint_kind text, delivery_kind text,
        click_ids text, amount numeric, currency text, user_id text, event_id text,
        has_client_ip boolean, user_agent text, judged_at timestamptz,
        OUT problem text, OUT valid_click_ids text)
RETURNS record
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 's2s_delivery_problem_sql';

-- Sends a delivery again: failed, skipped or retrying -> pending, due now, with a fresh
-- retry window. Its attempts count is kept (the audit trail in s2s.attempts goes on with
-- the next number). True when re-queued; false when it is already pending or being sent;
-- a delivery already sent is refused (a duplicate must never be sent on purpose), and so
-- is one whose values still fail the rules the orders trigger applied (expired click IDs,
-- an amount that is NULL, negative or not a number, a currency that is not ISO 4217 ...),
-- with the reason: what the trigger skipped is never sent on a retry unless corrected.
CREATE OR REPLACE FUNCTION s2s.retry(delivery_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d s2s.deliveries;
    chk record;
BEGIN
    SELECT * INTO d FROM s2s.deliveries x WHERE x.id = delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % does not exist', coalesce(delivery_id::text, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    IF d.status = 'sent' THEN
        RAISE EXCEPTION 'delivery % was already sent', delivery_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Sending it again would report a duplicate to the network.';
    END IF;
    IF d.status IN ('pending', 'sending') THEN
        RETURN false;
    END IF;
    SELECT p.* INTO chk
      FROM (SELECT (SELECT e.kind::text FROM s2s.endpoints e WHERE e.name = d.endpoint) AS k) x,
           s2s_private.delivery_problem(x.k, d.kind::text, d.click_ids, d.amount, d.currency,
                                        d.user_id, d.event_id, d.client_ip IS NOT NULL,
                                        d.user_agent, d.created_at) p;
    IF chk.problem IS NOT NULL THEN
        RAISE EXCEPTION 'delivery % cannot be sent', delivery_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = chk.problem,
                  HINT = 'Correct the delivery in s2s.deliveries (or the setting that refuses it), then retry it.';
    END IF;
    UPDATE s2s.deliveries x
       SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL,
           finished_at = NULL, claim_token = NULL, lease_until = NULL,
           click_ids = coalesce(chk.valid_click_ids, x.click_ids)
     WHERE x.id = delivery_id;
    PERFORM s2s.wake();
    RETURN true;
END
$$;

-- retry() for every failed delivery (of one endpoint, or of all). Skipped deliveries are
-- left alone: they lack data and would be skipped again. A failed delivery whose values
-- no longer pass the trigger's rules (edited, or judged by changed settings) stays failed:
-- a NOTICE counts them and names the first with its reason. Returns how many were
-- re-queued.
CREATE OR REPLACE FUNCTION s2s.retry_failed(endpoint text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
    refused integer := 0;
    first_refused text;
BEGIN
    IF endpoint IS NOT NULL THEN
        PERFORM s2s_private.require_endpoint(endpoint);
    END IF;
    FOR r IN
        SELECT d.id, p.problem, p.valid_click_ids
          FROM s2s.deliveries d
          LEFT JOIN s2s.endpoints e ON e.name = d.endpoint,
               s2s_private.delivery_problem(e.kind::text, d.kind::text, d.click_ids, d.amount,
                                            d.currency, d.user_id, d.event_id,
                                            d.client_ip IS NOT NULL, d.user_agent,
                                            d.created_at) p
         WHERE d.status = 'failed'
           AND (retry_failed.endpoint IS NULL OR d.endpoint = retry_failed.endpoint)
         ORDER BY d.id
           FOR UPDATE OF d
    LOOP
        IF r.problem IS NOT NULL THEN
            refused := refused + 1;
            first_refused := coalesce(first_refused, format('Delivery %s: %s', r.id, r.problem));
            CONTINUE;
        END IF;
        UPDATE s2s.deliveries d
           SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL,
               finished_at = NULL, claim_token = NULL, lease_until = NULL,
               click_ids = coalesce(r.valid_click_ids, d.click_ids)
         WHERE d.id = r.id;
        n := n + 1;
    END LOOP;
    IF refused > 0 THEN
        RAISE NOTICE '% failed deliveries were not retried: they do not pass validation', refused
            USING DETAIL = first_refused,
                  HINT = 's2s.retry(id) says why each is refused.';
    END IF;
    IF n > 0 THEN
        PERFORM s2s.wake();
    END IF;
    RETURN n;
END
$$;

REVOKE EXECUTE ON FUNCTION s2s_private.delivery_problem(text, text, text, numeric, text, text,
                                                        text, boolean, text, timestamptz)
    FROM PUBLIC;

-- == queue, retries and leases ==
