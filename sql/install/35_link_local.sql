-- s2s_tracking install script, part 35: endpoints may not point at link-local addresses.
--
-- 169.254.0.0/16 and fe80::/10 are where cloud metadata services answer (169.254.169.254
-- hands out the machine's credentials): an endpoint URL there would make the worker an
-- SSRF relay. A second BEFORE trigger on s2s.endpoints (besides endpoints_guard) refuses
-- a URL whose host is such an address written literally, in any form getaddrinfo accepts
-- (dotted, decimal, hex, octal, short, IPv4-mapped IPv6), unless the superuser-only
-- setting s2s_tracking.allow_link_local is on. Host names are checked where they resolve:
-- the worker refuses to connect to a link-local address whatever the name (src/http.c).

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
