-- s2s_tracking install script, part 35: endpoints may not point at internal addresses.
--
-- Whoever may write s2s.endpoints chooses where the worker connects, and the response is
-- stored: without a limit the worker would relay requests into the server's own networks
-- (loopback, private and CGNAT ranges, the cloud metadata service at 169.254.169.254 that
-- hands out the machine's credentials). The real barrier is in the HTTP client, which
-- checks every address it connects to, whatever the URL spelled or the name resolved to
-- (src/netcheck.c, src/http.c). This BEFORE trigger on s2s.endpoints (besides
-- endpoints_guard) refuses early, with a clear message, a URL whose host is such an
-- address written literally, in any form getaddrinfo accepts (dotted, decimal, hex,
-- octal, short, IPv6, IPv4-mapped or NAT64 IPv6), unless the superuser-only setting
-- s2s_tracking.allowed_networks lists its network (or, for link-local addresses, the
-- deprecated s2s_tracking.allow_link_local is on). The ranges and the setting are the C
-- check's own (s2s_private.address_refusal).

-- The IPv4 address inet_aton() (and so libcurl) reads from host, or NULL when host is
-- not a numeric IPv4 form: 1 to 4 parts, each decimal, 0x-hex (one digit at least) or
-- 0-octal, the last part filling the remaining bytes ("169.254.43518" and "2852039166"
-- are 169.254.169.254). A trailing dot is ignored (stricter than inet_aton, on purpose).
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
