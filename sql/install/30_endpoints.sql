-- s2s_tracking install script, part 30: the endpoints guard.
--
-- A BEFORE INSERT OR UPDATE trigger on s2s.endpoints that
--   * refuses a URL the worker must never call (see s2s_private.check_endpoint_url), and
--     a refused_pattern the worker cannot compile (s2s_private.check_refused_pattern);
--   * moves the secret into s2s_private.endpoint_secrets and leaves only a mask in
--     s2s.endpoints.secret, so that no grant on schema s2s can ever reveal it;
--   * keeps updated_at current;
--   * refuses to rename an endpoint or change its kind while an orders trigger tracks it
--     (the trigger names it, and its columns were checked against its kind);
--   * carries a rename over to the endpoint's deliveries;
--   * when an endpoint is re-enabled or resumed, makes the deliveries that waited due now
--     (the time spent paused not counting against their retry window) and wakes the
--     worker at commit, so that they are sent at once.
-- It is SECURITY DEFINER because the administrator who edits s2s.endpoints has no access
-- to s2s_private.

-- s2s.wake(): wake the worker when the current transaction commits (C: s2s_wake_at_commit).
CREATE FUNCTION s2s.wake() RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 's2s_wake';
COMMENT ON FUNCTION s2s.wake() IS
    'Wakes the delivery worker when the current transaction commits.';

-- Raises 22023 unless url is one the worker may call for an endpoint of this kind:
-- http(s) only (http only with s2s_tracking.allow_http), a host, no credentials, printable
-- ASCII only, no fragment, and for the Swaarm kinds no query either (a path is appended).
CREATE FUNCTION s2s_private.check_endpoint_url(kind s2s.endpoint_kind, url text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    scheme text;
    authority text;
    host text[];
BEGIN
    IF url IS NULL OR url = '' THEN
        RAISE EXCEPTION 'endpoint url must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- printable ASCII, no space: a URL with raw spaces, control characters or non-ASCII
    -- bytes would be sent differently from what the administrator sees
    IF url !~ '^[!-~]+$' OR position(E'\\' IN url) > 0 THEN
        RAISE EXCEPTION 'endpoint url "%" contains a character that is not allowed in a URL', url
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Percent-encode spaces and non-ASCII characters.';
    END IF;
    parts := regexp_match(url, '^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)$');
    IF parts IS NULL THEN
        RAISE EXCEPTION 'endpoint url "%" is not an absolute http or https URL', url
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write it as https://host/path.';
    END IF;
    scheme := lower(parts[1]);
    authority := parts[2];
    IF scheme NOT IN ('http', 'https') THEN
        RAISE EXCEPTION 'endpoint url scheme "%" is not allowed', scheme
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Only https (and http when s2s_tracking.allow_http is on) is allowed.';
    END IF;
    IF scheme = 'http'
       AND NOT coalesce(current_setting('s2s_tracking.allow_http', true), 'off')::boolean THEN
        RAISE EXCEPTION 'endpoint url must use https'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('"%s" uses plain http.', url),
                  HINT = 'Plain http is only for tests: a superuser may set s2s_tracking.allow_http.';
    END IF;
    IF position('@' IN authority) > 0 THEN
        RAISE EXCEPTION 'endpoint url must not contain credentials'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A user name or password before "@" would be sent to the host and shown to whoever can read s2s.endpoints.',
                  HINT = 'Store the key or token in the secret column.';
    END IF;
    -- host name or [IPv6 literal], then an optional port
    host := regexp_match(authority,
        '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?)(:([0-9]{1,5}))?$');
    IF host IS NULL THEN
        RAISE EXCEPTION 'endpoint url "%" has no valid host', url
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF host[6] IS NOT NULL AND host[6]::integer NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'endpoint url "%" has an invalid port', url
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF position('#' IN url) > 0 THEN
        RAISE EXCEPTION 'endpoint url must not contain a fragment'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('"%s" contains "#".', url);
    END IF;
    -- Affilae: the extension appends key, id, ... itself; a key written in the URL would
    -- also be readable by whoever may read s2s.endpoints
    IF kind = 'affilae'
       AND url ~* '[?&](key|id|amount|currency|payment|customer|cv|voucher|cids)(=|&|$)' THEN
        RAISE EXCEPTION 'the Affilae postback url must not carry the parameters the extension sends'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'key, id, amount, currency, payment, customer, cv, voucher and cids are appended to the URL for each conversion.',
                  HINT = 'Store the conversion key in the secret column.';
    END IF;
    IF kind <> 'affilae' AND position('?' IN url) > 0 THEN
        RAISE EXCEPTION 'the tracking domain of a % endpoint must not contain a query', kind
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('"%s" contains "?"; /postback, /s2sevent or /click is appended to it.', url),
                  HINT = 'Give the tracking domain only, e.g. https://track.yourdomain.swaarm-app.com.';
    END IF;
END
$$;

-- Raises 2201B unless pattern is a refused_pattern the worker can compile: a POSIX
-- extended regular expression, compiled by PostgreSQL's engine as the worker compiles it
-- (C: src/refused.c). NULL is fine (no pattern).
CREATE FUNCTION s2s_private.check_refused_pattern(pattern text) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 's2s_check_refused_pattern';

CREATE FUNCTION s2s_private.endpoints_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mask CONSTANT text := '********';
BEGIN
    -- Checked when set, not on every update: the worker pausing an http endpoint (in a
    -- session where allow_http is off) must not fail on a URL accepted earlier.
    IF TG_OP = 'INSERT' OR NEW.url IS DISTINCT FROM OLD.url OR NEW.kind <> OLD.kind THEN
        PERFORM s2s_private.check_endpoint_url(NEW.kind, NEW.url);
    END IF;
    IF NEW.kind <> 'swaarm_postback' AND (NEW.http_method <> 'GET' OR NEW.token_in_query) THEN
        RAISE EXCEPTION 'http_method and token_in_query apply to swaarm_postback endpoints only'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Endpoint "%s" is of kind %s, which is always sent with GET.',
                                  NEW.name, NEW.kind);
    END IF;
    -- checked when set, with the worker's own compiler (a pattern it cannot run would
    -- otherwise be found out only at the first answer)
    IF NEW.refused_pattern IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.refused_pattern IS DISTINCT FROM OLD.refused_pattern) THEN
        PERFORM s2s_private.check_refused_pattern(NEW.refused_pattern);
    END IF;

    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
        -- the orders triggers name their endpoint and fit its kind: such a change would
        -- leave them without an endpoint to report to (32_endpoint_references.sql)
        IF NEW.name <> OLD.name OR NEW.kind <> OLD.kind THEN
            PERFORM s2s_private.refuse_tracked_endpoint_change(OLD.name,
                CASE WHEN NEW.name <> OLD.name THEN 'rename' ELSE 'kind' END);
        END IF;
        IF NEW.name <> OLD.name THEN
            -- follow a rename here: the cascade on endpoint_secrets would collide with a
            -- secret written below under the new name
            UPDATE s2s_private.endpoint_secrets SET endpoint = NEW.name
             WHERE endpoint = OLD.name;
            -- and in the queue, once the transactions enqueuing to the old name are done
            -- (32_endpoint_references.sql)
            PERFORM s2s_private.carry_endpoint_rename(OLD.name, NEW.name);
        END IF;
    END IF;

    -- The secret: the mask (or, in an UPDATE, an unchanged value) keeps what is stored;
    -- NULL removes it; anything else replaces it.
    IF NEW.secret = mask OR (TG_OP = 'UPDATE' AND NEW.secret IS NOT DISTINCT FROM OLD.secret) THEN
        IF TG_OP = 'UPDATE' THEN
            NEW.secret := OLD.secret;
        END IF;
    ELSIF NEW.secret IS NULL THEN
        DELETE FROM s2s_private.endpoint_secrets WHERE endpoint = NEW.name;
    ELSE
        IF NEW.secret = '' OR NEW.secret ~ '[[:cntrl:]]' THEN
            RAISE EXCEPTION 'endpoint secret must not be empty or contain control characters'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Set secret to NULL for an endpoint without a secret.';
        END IF;
        INSERT INTO s2s_private.endpoint_secrets AS s (endpoint, secret)
        VALUES (NEW.name, NEW.secret)
        ON CONFLICT (endpoint) DO UPDATE SET secret = EXCLUDED.secret;
        NEW.secret := mask;
    END IF;

    -- Re-enabled or resumed (by s2s.resume or by clearing paused_at): the deliveries that
    -- waited are due now, and the time spent paused does not count against their retry
    -- window (their first_attempt_at moves forward by that much). A rename was carried
    -- over to them above.
    IF TG_OP = 'UPDATE'
       AND ((NEW.enabled AND NOT OLD.enabled)
            OR (OLD.paused_at IS NOT NULL AND NEW.paused_at IS NULL)) THEN
        UPDATE s2s.deliveries d
           SET next_attempt_at = least(d.next_attempt_at, now()),
               first_attempt_at = CASE
                   WHEN d.first_attempt_at IS NOT NULL AND NEW.paused_at IS NULL
                        AND OLD.paused_at IS NOT NULL
                   THEN least(d.first_attempt_at + (now() - OLD.paused_at), now())
                   ELSE d.first_attempt_at END
         WHERE d.endpoint = NEW.name AND d.finished_at IS NULL
           AND d.status IN ('pending', 'retrying')
           -- only rows that change: a backlog already due is not rewritten
           AND (d.next_attempt_at > now()
                OR (d.first_attempt_at IS NOT NULL AND NEW.paused_at IS NULL
                    AND OLD.paused_at IS NOT NULL));
    END IF;

    -- Sendable again (or new): wake the worker when this transaction commits.
    IF NEW.enabled AND NEW.paused_at IS NULL
       AND (TG_OP = 'INSERT' OR NOT OLD.enabled OR OLD.paused_at IS NOT NULL) THEN
        PERFORM s2s.wake();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoints_guard
    BEFORE INSERT OR UPDATE ON s2s.endpoints
    FOR EACH ROW EXECUTE FUNCTION s2s_private.endpoints_guard();
