-- s2s_tracking upgrade from 0.1.0 to 0.2.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- 0.2.0 brings two hardening changes (doc/hardening.md):
--  * endpoints at link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata
--    services) are refused unless the new superuser-only setting
--    s2s_tracking.allow_link_local is on: a second trigger on s2s.endpoints checks every
--    literal form of the URL's host; the worker and s2s.swaarm_click check the address
--    they connect to (in the library, which the upgrade of the package already replaced);
--  * pg_dump keeps the position of the identity sequences of s2s.deliveries and
--    s2s.clicks, so that ids do not collide after a restore.
-- Endpoints stored under 0.1.0 are not checked again: only a change of url is.
-- Statements are those of sql/install/35_link_local.sql and 80_dump.sql, verbatim, then
-- the privileges that 90_privileges.sql gives a fresh install.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION s2s_private.numeric_ipv4(host text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    vals numeric[] := '{}';
    p text;
    v numeric;
    n integer;
    addr numeric := 0;
    a bigint;
BEGIN
    host := rtrim(lower(host), '.');
    IF host !~ '^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$' THEN
        RETURN NULL;
    END IF;
    parts := string_to_array(host, '.');
    FOREACH p IN ARRAY parts LOOP
        IF length(p) > 40 THEN
            RETURN NULL;
        END IF;
        v := 0;
        IF p LIKE '0x%' THEN
            FOR i IN 3 .. length(p) LOOP
                v := v * 16 + strpos('0123456789abcdef', substr(p, i, 1)) - 1;
            END LOOP;
        ELSIF p LIKE '0%' THEN
            IF p ~ '[89]' THEN
                RETURN NULL;
            END IF;
            FOR i IN 1 .. length(p) LOOP
                v := v * 8 + substr(p, i, 1)::integer;
            END LOOP;
        ELSE
            v := p::numeric;
        END IF;
        vals := vals || v;
    END LOOP;
    n := array_length(vals, 1);
    -- every part but the last is one byte; the last fills the rest
    FOR i IN 1 .. n - 1 LOOP
        IF vals[i] > 255 THEN
            RETURN NULL;
        END IF;
        addr := addr * 256 + vals[i];
    END LOOP;
    IF vals[n] >= (1::bigint << (8 * (5 - n))) THEN
        RETURN NULL;
    END IF;
    a := (addr * (1::bigint << (8 * (5 - n))) + vals[n])::bigint;
    RETURN format('%s.%s.%s.%s', a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)::inet;
END
$$;

-- Whether the URL's host is a literal link-local address.
CREATE FUNCTION s2s_private.url_is_link_local(url text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    authority text;
    host text;
    addr inet;
BEGIN
    authority := substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)');
    IF authority IS NULL THEN
        RETURN false;
    END IF;
    authority := regexp_replace(authority, '^.*@', '');
    IF authority LIKE '[%' THEN
        host := substring(authority FROM '^\[([^]]*)\]');
        BEGIN
            addr := host::inet;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN false;
        END;
        RETURN addr <<= 'fe80::/10'::inet OR addr <<= '::ffff:169.254.0.0/112'::inet;
    END IF;
    host := regexp_replace(authority, ':[0-9]*$', '');
    addr := s2s_private.numeric_ipv4(host);
    RETURN addr IS NOT NULL AND addr <<= '169.254.0.0/16'::inet;
END
$$;

-- SECURITY DEFINER: an administrator role that writes s2s.endpoints has no USAGE on
-- s2s_private, where the helpers live.
CREATE FUNCTION s2s_private.endpoints_link_local_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (TG_OP = 'INSERT' OR NEW.url IS DISTINCT FROM OLD.url)
       AND NOT coalesce(current_setting('s2s_tracking.allow_link_local', true), 'off')::boolean
       AND s2s_private.url_is_link_local(NEW.url) THEN
        RAISE EXCEPTION 'endpoint url must not point at a link-local address'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The host of "%s" is in 169.254.0.0/16 or fe80::/10, where cloud metadata services answer.', NEW.url),
                  HINT = 'A superuser may set s2s_tracking.allow_link_local if this destination is intended.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoints_link_local_guard
    BEFORE INSERT OR UPDATE OF url ON s2s.endpoints
    FOR EACH ROW EXECUTE FUNCTION s2s_private.endpoints_link_local_guard();

SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('s2s.deliveries', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('s2s.clicks', 'id'), '');

REVOKE EXECUTE ON FUNCTION s2s_private.numeric_ipv4(text), s2s_private.url_is_link_local(text),
    s2s_private.endpoints_link_local_guard() FROM PUBLIC;

-- Per-endpoint permission for s2s.track_event (event_roles).
ALTER TABLE s2s.endpoints ADD COLUMN event_roles name[];

CREATE OR REPLACE FUNCTION s2s.track_event(endpoint text, user_id text, event_id text, ip inet,
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
    new_id bigint;
    key text := dedupe_key;
    caller text;
BEGIN
    IF track_event.endpoint IS NULL THEN
        RAISE EXCEPTION 'endpoint must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.name, e.kind, e.currency, e.event_roles INTO ep
      FROM s2s.endpoints e WHERE e.name = track_event.endpoint;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'endpoint "%" does not exist', track_event.endpoint
            USING ERRCODE = 'undefined_object';
    END IF;
    -- The caller, as this SECURITY DEFINER function can know it: the role set with SET
    -- ROLE, else the session's login role.
    caller := CASE WHEN current_setting('role') = 'none' THEN session_user::text
                   ELSE current_setting('role') END;
    IF ep.event_roles IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM unnest(ep.event_roles) AS r(name)
            WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name)
              AND pg_catalog.pg_has_role(caller, r.name, 'MEMBER')) THEN
        RAISE EXCEPTION 'permission denied to enqueue events to endpoint "%"', ep.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" is not a member of any role in the endpoint''s event_roles.', caller),
                  HINT = 'An administrator adds the role to s2s.endpoints.event_roles.';
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
    ELSIF track_event.event_id = '' THEN
        RAISE EXCEPTION 'event_id must not be empty' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Swaarm requires the event''s mapping id.';
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
    IF key = '' THEN
        RAISE EXCEPTION 'dedupe_key must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL to send every call as a new event.';
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
