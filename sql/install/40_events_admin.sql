-- s2s_tracking install script, part 40: Swaarm events (s2s.track_event) and the
-- administrator's functions on the queue (preview, retry, retry_failed, pause, resume).
--
-- Functions that write the protected tables are SECURITY DEFINER with a pinned
-- search_path; who may call them is decided in 90_privileges.sql.

-- Whether caller may enqueue events with s2s.track_event to an endpoint whose event_roles
-- is roles: when caller is a member of one of those roles ('public' standing for every
-- role, as in GRANT ... TO PUBLIC; no role can be named so), or of the owner of
-- s2s.endpoints (the administrator; a superuser is a member of every role). NULL or an
-- empty array: nobody else. A role named in roles that does not exist grants nothing.
CREATE FUNCTION s2s_private.may_track_event(roles name[], caller name) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_has_role(caller, c.relowner, 'MEMBER')
        OR EXISTS (SELECT 1 FROM pg_catalog.unnest(roles) AS r(name)
                    WHERE r.name OPERATOR(pg_catalog.=) 'public'
                       OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles o
                                    WHERE o.rolname OPERATOR(pg_catalog.=) r.name)
                           AND pg_catalog.pg_has_role(caller, r.name, 'MEMBER')))
      FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) 's2s.endpoints'::pg_catalog.regclass
$$;

-- The one answer to a caller who may not enqueue events to an endpoint, whether it
-- exists or not.
CREATE FUNCTION s2s_private.deny_track_event(endpoint text, caller text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'permission denied to enqueue events to endpoint "%"', endpoint
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('Role "%s" is not allowed by the event_roles of an endpoint of that name, if there is one.', caller),
              HINT = 'An administrator adds the role to the endpoint''s event_roles in s2s.endpoints.';
END
$$;

-- Enqueues one Swaarm event; returns its delivery id. A dedupe_key already used on this
-- endpoint returns the existing delivery's id and enqueues nothing; without a dedupe_key
-- every call is a new event. Only the roles the endpoint's event_roles names may
-- (s2s_private.may_track_event): new endpoints are closed to everyone but the owner.
CREATE FUNCTION s2s.track_event(endpoint text, user_id text, event_id text, ip inet,
                                user_agent text, sale_amount numeric DEFAULT NULL,
                                currency text DEFAULT NULL,
                                aggregated_event_value numeric DEFAULT NULL,
                                event_value text DEFAULT NULL, dedupe_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    ep record;
    roles name[];
    new_id bigint;
    key text := dedupe_key;
    caller text;
BEGIN
    IF track_event.endpoint IS NULL THEN
        RAISE EXCEPTION 'endpoint must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- The caller, as this SECURITY DEFINER function can know it: the role set with SET
    -- ROLE, else the session's login role (current_user is this function's owner).
    caller := CASE WHEN current_setting('role') = 'none' THEN session_user::text
                   ELSE current_setting('role') END;
    -- Permission first: before the endpoint's lock, so that a caller who may not use the
    -- endpoint cannot make its deletion or renaming wait; and with the same answer for an
    -- endpoint that does not exist, so that such a caller does not learn which do.
    SELECT e.event_roles INTO roles FROM s2s.endpoints e WHERE e.name = track_event.endpoint;
    IF NOT FOUND AND s2s_private.may_track_event(NULL, caller) THEN
        RAISE EXCEPTION 'endpoint "%" does not exist', track_event.endpoint
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT FOUND OR NOT s2s_private.may_track_event(roles, caller) THEN
        PERFORM s2s_private.deny_track_event(track_event.endpoint, caller);
    END IF;
    -- held against deletion and renaming until commit (32_endpoint_references.sql)
    PERFORM s2s_private.hold_endpoint(track_event.endpoint);
    -- again under the lock: the endpoint's event_roles may have changed meanwhile
    SELECT e.name, e.kind, e.currency, e.event_roles INTO ep
      FROM s2s.endpoints e WHERE e.name = track_event.endpoint;
    IF NOT FOUND OR NOT s2s_private.may_track_event(ep.event_roles, caller) THEN
        PERFORM s2s_private.deny_track_event(track_event.endpoint, caller);
    END IF;
    IF ep.kind NOT IN ('swaarm_postback', 'swaarm_s2sevent') THEN
        RAISE EXCEPTION 'endpoint "%" is of kind %, not a Swaarm endpoint', ep.name, ep.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'track_event sends to swaarm_postback and swaarm_s2sevent endpoints; Affilae conversions come from s2s.track_orders.';
    END IF;
    IF track_event.user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Swaarm requires the id of the user who performed the event.';
    ELSIF track_event.user_id = '' THEN
        RAISE EXCEPTION 'user_id must not be empty' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Swaarm requires the id of the user who performed the event.';
    END IF;
    IF track_event.event_id IS NULL THEN
        RAISE EXCEPTION 'event_id must not be null' USING ERRCODE = 'null_value_not_allowed',
            DETAIL = 'Swaarm requires the event''s mapping id.';
    ELSIF track_event.event_id = '' AND ep.kind <> 'swaarm_s2sevent' THEN
        -- an empty one is the attribution-only s2sevent ("...&event_id=&user_ip=..."),
        -- which Swaarm's document describes for /s2sevent only
        RAISE EXCEPTION 'event_id must not be empty' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Swaarm requires the event''s mapping id.',
            HINT = 'Only a swaarm_s2sevent endpoint takes an empty event_id (an attribution-only event).';
    END IF;
    IF ep.kind = 'swaarm_s2sevent' THEN
        IF ip IS NULL THEN
            RAISE EXCEPTION 'ip must not be null for a swaarm_s2sevent endpoint'
                USING ERRCODE = 'null_value_not_allowed',
                      DETAIL = 'Swaarm attribution events require user_ip.';
        END IF;
        IF track_event.user_agent IS NULL THEN
            RAISE EXCEPTION 'user_agent must not be null for a swaarm_s2sevent endpoint'
                USING ERRCODE = 'null_value_not_allowed',
                      DETAIL = 'Swaarm attribution events require user_ua.';
        ELSIF track_event.user_agent = '' THEN
            RAISE EXCEPTION 'user_agent must not be empty for a swaarm_s2sevent endpoint'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Swaarm attribution events require user_ua.';
        END IF;
    END IF;
    IF sale_amount = 'NaN' OR abs(sale_amount) = 'Infinity' THEN
        RAISE EXCEPTION 'sale_amount must be a finite number, not %', sale_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF aggregated_event_value = 'NaN' OR abs(aggregated_event_value) = 'Infinity' THEN
        RAISE EXCEPTION 'aggregated_event_value must be a finite number, not %',
                        aggregated_event_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF currency IS NOT NULL AND currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'currency "%" is not an ISO 4217 code', currency
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use three capital letters, e.g. EUR.';
    END IF;
    -- no implied currency: Swaarm's sale_amount always travels with its currency
    IF sale_amount IS NOT NULL AND currency IS NULL AND ep.currency IS NULL
       AND ep.kind = 'swaarm_postback' THEN
        RAISE EXCEPTION 'sale_amount needs a currency' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('No currency was given and endpoint "%s" names none.', ep.name),
            HINT = 'Pass currency (e.g. ''EUR''), or set the endpoint''s currency in s2s.endpoints.';
    END IF;
    IF key = '' THEN
        RAISE EXCEPTION 'dedupe_key must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL to send every call as a new event.';
    END IF;
    -- The orders trigger's keys: an event under one would stand for that order's
    -- conversion (the trigger then finds the key taken) and tell the caller about it.
    IF key LIKE 'order:%' THEN
        RAISE EXCEPTION 'dedupe_key must not start with "order:"' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Keys starting with "order:" are those of the conversions the orders trigger enqueues.',
            HINT = 'Use another prefix, e.g. ''purchase:'' || the order number.';
    END IF;

    -- Without a key every event is distinct; a random one keeps the unique constraint.
    IF key IS NULL THEN
        key := 'event:' || gen_random_uuid()::text;
    END IF;

    INSERT INTO s2s.deliveries AS d
           (endpoint, kind, dedupe_key, user_id, event_id, client_ip, user_agent, amount,
            currency, aggregated_event_value, event_value)
    VALUES (ep.name, 'event', key, track_event.user_id, track_event.event_id, ip,
            track_event.user_agent, sale_amount,
            -- an amount without a currency is in the endpoint's, fixed now
            CASE WHEN sale_amount IS NOT NULL THEN coalesce(currency, ep.currency)
                 ELSE currency END,
            aggregated_event_value, event_value)
    ON CONFLICT (endpoint, dedupe_key) DO NOTHING
    RETURNING d.id INTO new_id;

    IF new_id IS NULL THEN
        SELECT d.id INTO new_id FROM s2s.deliveries d
         WHERE d.endpoint = ep.name AND d.dedupe_key = key;
        IF new_id IS NULL THEN
            RAISE EXCEPTION 'event with dedupe_key "%" was enqueued and removed concurrently', key
                USING ERRCODE = 'serialization_failure', HINT = 'Try again.';
        END IF;
    ELSE
        PERFORM s2s.wake();
    END IF;
    RETURN new_id;
END
$$;

-- The exact request the worker would send for a delivery, secrets masked. C, through the
-- worker's own select list, mapper and renderer (admin.c, delivery.c, render.c).
CREATE FUNCTION s2s.preview(delivery_id bigint, OUT method text, OUT url text,
                            OUT headers text[], OUT body text)
RETURNS record
LANGUAGE c VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 's2s_preview';

-- Raises unless the endpoint exists.
CREATE FUNCTION s2s_private.require_endpoint(endpoint text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF endpoint IS NULL THEN
        RAISE EXCEPTION 'endpoint must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM FROM s2s.endpoints e WHERE e.name = require_endpoint.endpoint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'endpoint "%" does not exist', endpoint USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

-- Why a delivery cannot be sent, by the very rules the orders trigger applied when it
-- enqueued it (C, src/delivery_check.c: one copy of the rules), the click IDs judged at
-- judged_at (when the order was placed, else when the trigger judged them) by the
-- endpoint's attribution window in seconds (NULL: s2s_tracking.click_ttl) and the current
-- s2s_tracking.click_max_skew; NULL problem when it can be sent, and then the Affilae click
-- IDs normalised. A NULL endpoint_kind means the endpoint is gone. An Affilae conversion
-- without an amount is one without a sale, unless last_error says the trigger skipped it
-- for its NULL amount.
CREATE FUNCTION s2s_private.delivery_problem(endpoint_kind text, delivery_kind text,
        click_ids text, amount numeric, currency text, user_id text, event_id text,
        has_client_ip boolean, user_agent text, judged_at timestamptz,
        attribution_window_s bigint, last_error text,
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
CREATE FUNCTION s2s.retry(delivery_id bigint) RETURNS boolean
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
      FROM (SELECT e.kind::text AS k, e.currency AS c,
                   EXTRACT(epoch FROM e.attribution_window)::bigint AS w
              FROM (SELECT) one
              LEFT JOIN s2s.endpoints e ON e.name = d.endpoint) x,
           s2s_private.delivery_problem(x.k, d.kind::text, d.click_ids, d.amount,
                                        coalesce(d.currency, x.c),
                                        d.user_id, d.event_id, d.client_ip IS NOT NULL,
                                        d.user_agent, coalesce(d.ordered_at, d.created_at),
                                        x.w, d.last_error) p;
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
CREATE FUNCTION s2s.retry_failed(endpoint text DEFAULT NULL) RETURNS integer
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
                                            coalesce(d.currency, e.currency), d.user_id,
                                            d.event_id,
                                            d.client_ip IS NOT NULL, d.user_agent,
                                            coalesce(d.ordered_at, d.created_at),
                                            EXTRACT(epoch FROM e.attribution_window)::bigint,
                                            d.last_error) p
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

-- Stops sending to an endpoint; its deliveries keep being enqueued and wait, unburned.
-- Pausing a paused endpoint updates the reason and keeps the time it was first paused.
CREATE FUNCTION s2s.pause(endpoint text, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM s2s_private.require_endpoint(endpoint);
    UPDATE s2s.endpoints e
       SET paused_at = coalesce(e.paused_at, now()),
           pause_reason = coalesce(reason, 'paused by ' || session_user)
     WHERE e.name = pause.endpoint;
END
$$;

-- Clears a pause (set by s2s.pause or by the worker on a 401/403/404). The endpoints
-- trigger does the rest (30_endpoints.sql): the endpoint's waiting deliveries become due
-- now, the time spent paused does not count against their retry window, and the worker
-- is woken at commit. An endpoint that is disabled (enabled = false) stays disabled.
CREATE FUNCTION s2s.resume(endpoint text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM s2s_private.require_endpoint(endpoint);
    UPDATE s2s.endpoints e SET paused_at = NULL, pause_reason = NULL
     WHERE e.name = resume.endpoint AND e.paused_at IS NOT NULL;
END
$$;
