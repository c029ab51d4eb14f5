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

-- Endpoints may point at no internal address (loopback, private, CGNAT, metadata, ...)
-- unless s2s_tracking.allowed_networks lists it, not only at link-local ones: the guard
-- of sql/install/35_networks.sql replaces the link-local one.
DROP TRIGGER endpoints_link_local_guard ON s2s.endpoints;
DROP FUNCTION s2s_private.endpoints_link_local_guard();
DROP FUNCTION s2s_private.url_is_link_local(text);

-- The address a URL's host is written as, or NULL when the host is a name.
CREATE FUNCTION s2s_private.url_literal_address(url text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    authority text;
    host text;
BEGIN
    authority := substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)');
    IF authority IS NULL THEN
        RETURN NULL;
    END IF;
    authority := regexp_replace(authority, '^.*@', '');
    IF authority LIKE '[%' THEN
        host := substring(authority FROM '^\[([^]]*)\]');
        BEGIN
            RETURN host::inet;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN NULL;
        END;
    END IF;
    host := regexp_replace(authority, ':[0-9]*$', '');
    RETURN s2s_private.numeric_ipv4(host);
END
$$;

-- Why an endpoint may not be at this address under s2s_tracking.allowed_networks (e.g.
-- '10.0.0.1 is a private address (10.0.0.0/8)'), or NULL when it may (src/netcheck_sql.c).
CREATE FUNCTION s2s_private.address_refusal(addr inet) RETURNS text
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 's2s_address_refusal';

-- SECURITY DEFINER: an administrator role that writes s2s.endpoints has no USAGE on
-- s2s_private, where the helpers live.
CREATE FUNCTION s2s_private.endpoints_network_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    why text;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.url IS DISTINCT FROM OLD.url THEN
        why := s2s_private.address_refusal(s2s_private.url_literal_address(NEW.url));
        IF why IS NOT NULL THEN
            RAISE EXCEPTION 'endpoint url must not point at an internal address'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('The host of "%s" is %s.', NEW.url,
                                      regexp_replace(why, '^\S+ is ', '')),
                      HINT = 'A superuser may list the network in s2s_tracking.allowed_networks if this destination is intended.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoints_network_guard
    BEFORE INSERT OR UPDATE OF url ON s2s.endpoints
    FOR EACH ROW EXECUTE FUNCTION s2s_private.endpoints_network_guard();

REVOKE EXECUTE ON FUNCTION
    s2s_private.url_literal_address(text),
    s2s_private.address_refusal(inet),
    s2s_private.endpoints_network_guard()
  FROM PUBLIC;

-- == privileges and track_event ==

-- == tracked endpoints and the orders trigger ==

-- == queue, retries and leases ==
