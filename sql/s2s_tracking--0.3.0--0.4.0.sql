-- s2s_tracking upgrade from 0.3.0 to 0.4.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- 0.4.0 keeps every promise at the edges (CHANGELOG.md): the worker runs with a pinned
-- search_path as the extension's owner, stored responses are redacted, privileges are
-- checked before locks, endpoints are closed to track_event by default, tracked endpoints
-- cannot be renamed or deleted out from under their triggers, and the trigger sees every
-- status transition. Each section below brings the statements of sql/install/ verbatim
-- that changed, then their privileges.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.4.0'" to load this file. \quit

-- Every name below is qualified, and the operators and functions of pg_catalog come first
-- and alone (added in 0.5.0): the update runs as a superuser, and schema s2s, the
-- extension's schema and so the script's search_path, belongs to the extension's owner,
-- who could put there an operator or function matching an unqualified call better than
-- pg_catalog's (oid = regprocedure, int2 & int4, an enum's =). Set back after the script.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- == what the update runs as superuser (added in 0.5.0) ==
-- Refuses to run over what another role attached to the extension's tables. An update is
-- run by a superuser, and its statements fire the triggers and rules of the tables they
-- change and evaluate their constraints, defaults and index expressions: one that calls a
-- function or operator the extension did not make would run it as that superuser. The
-- extension's owner (NOSUPERUSER after doc/hardening.md) owns those tables and could add
-- one. The shop drops it for the update and adds it again after.
DO $$
DECLARE
    ext pg_catalog.oid := (SELECT e.oid FROM pg_catalog.pg_extension e
        WHERE e.extname OPERATOR(pg_catalog.=) 's2s_tracking');
    found text;
    deliveries pg_catalog.oid;
    status_type pg_catalog.oid;
BEGIN
    -- Held to the end of the update, so that nothing checked below changes before the
    -- statements that rely on it (the owner cannot retype a column, add a child or an
    -- index meanwhile; its lock, taken first, makes this wait).
    LOCK TABLE s2s.deliveries IN ACCESS EXCLUSIVE MODE;
    deliveries := pg_catalog.to_regclass('s2s.deliveries');
    status_type := pg_catalog.to_regtype('s2s.delivery_status');
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.pg_describe_object(a.classid, a.objid, 0), ', ')
      INTO found
      FROM pg_catalog.pg_depend m                  -- a table of the extension
      JOIN pg_catalog.pg_depend a                  -- what is attached to it
        ON a.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND a.refobjid OPERATOR(pg_catalog.=) m.objid
       AND a.deptype OPERATOR(pg_catalog.=) 'a'     -- a trigger, rule, constraint, default, index
      JOIN pg_catalog.pg_depend u                  -- a routine or operator that uses
        ON u.classid OPERATOR(pg_catalog.=) a.classid AND u.objid OPERATOR(pg_catalog.=) a.objid
       AND u.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_proc'::pg_catalog.regclass,
                                                          'pg_catalog.pg_operator'::pg_catalog.regclass])
     WHERE m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND m.refobjid OPERATOR(pg_catalog.=) ext AND m.deptype OPERATOR(pg_catalog.=) 'e'
       AND m.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       -- made by the extension; none of its routines is attached to s2s.deliveries, whose
       -- index predicates a query's planning evaluates (a member routine may be replaced)
       AND (m.objid OPERATOR(pg_catalog.=) deliveries
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_depend x
                        WHERE x.classid OPERATOR(pg_catalog.=) u.refclassid
                          AND x.objid OPERATOR(pg_catalog.=) u.refobjid
                          AND x.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                          AND x.refobjid OPERATOR(pg_catalog.=) ext
                          AND x.deptype OPERATOR(pg_catalog.=) 'e'))
       AND COALESCE((SELECT p.pronamespace FROM pg_catalog.pg_proc p
                      WHERE u.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                        AND p.oid OPERATOR(pg_catalog.=) u.refobjid),
                    (SELECT o.oprnamespace FROM pg_catalog.pg_operator o
                      WHERE u.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
                        AND o.oid OPERATOR(pg_catalog.=) u.refobjid))
           OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'the tables of s2s_tracking carry objects it did not make: %', found
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'They call routines or operators from outside the extension and pg_catalog, which the update would run as the superuser who runs it.',
                  HINT = 'Drop them, run ALTER EXTENSION s2s_tracking UPDATE, and create them again.';
    END IF;
    -- What the statements of the updates evaluate must still be what the extension made:
    -- the owner could rename the enum and put under its name a domain whose CHECK calls
    -- its code, make s2s.deliveries a view, change a column's type, give the table a
    -- child, or add a cast to or from the enum; evaluating any of them would run that code
    -- as this superuser. Checked by what the names resolve to now.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                     JOIN pg_catalog.pg_depend x
                       ON x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND x.objid OPERATOR(pg_catalog.=) c.oid
                      AND x.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                      AND x.refobjid OPERATOR(pg_catalog.=) ext AND x.deptype OPERATOR(pg_catalog.=) 'e'
                    WHERE c.oid OPERATOR(pg_catalog.=) deliveries
                      AND c.relkind OPERATOR(pg_catalog.=) 'r')
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_type t
                        JOIN pg_catalog.pg_depend x
                          ON x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                         AND x.objid OPERATOR(pg_catalog.=) t.oid
                         AND x.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                         AND x.refobjid OPERATOR(pg_catalog.=) ext AND x.deptype OPERATOR(pg_catalog.=) 'e'
                       WHERE t.oid OPERATOR(pg_catalog.=) status_type
                         AND t.typtype OPERATOR(pg_catalog.=) 'e')
       OR EXISTS (SELECT FROM pg_catalog.pg_inherits i
                   WHERE i.inhparent OPERATOR(pg_catalog.=) deliveries)
       OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) deliveries AND NOT a.attisdropped
              AND ((a.attname OPERATOR(pg_catalog.=) 'status'
                    AND a.atttypid OPERATOR(pg_catalog.=) status_type)
                   OR (a.attname OPERATOR(pg_catalog.=) 'finished_at'
                       AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.timestamptz'::pg_catalog.regtype)))
          OPERATOR(pg_catalog.<>) 2
       OR EXISTS (SELECT FROM pg_catalog.pg_cast k, pg_catalog.pg_type t
                   WHERE t.oid OPERATOR(pg_catalog.=) status_type
                     AND (k.castsource OPERATOR(pg_catalog.=) ANY (ARRAY[t.oid, t.typarray])
                          OR k.casttarget OPERATOR(pg_catalog.=) ANY (ARRAY[t.oid, t.typarray])))
    THEN
        RAISE EXCEPTION 's2s.deliveries or s2s.delivery_status is no longer what s2s_tracking made'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The table must be a table of the extension, without children, whose status and finished_at columns have the extension''s enum and timestamptz; the enum must be the extension''s, with no cast to or from it.',
                  HINT = 'Put back what was renamed, altered or added, run ALTER EXTENSION s2s_tracking UPDATE, and make the changes again.';
    END IF;
END
$$;

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

-- track_event checks the caller's permission before the endpoint's lock, answers the same
-- for an endpoint that does not exist and one the caller may not use, and new endpoints
-- are closed to it (event_roles NULL or empty: nobody but the owner of s2s.endpoints).
-- From 40_events_admin.sql:
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

-- s2s.track_event: as 40_events_admin.sql has it, in the last section (it changes again there).

-- Existing endpoints keep their behaviour: NULL event_roles meant every role allowed to
-- execute track_event, which is now written 'public'.
UPDATE s2s.endpoints SET event_roles = ARRAY['public']::name[] WHERE event_roles IS NULL;

-- Privileges, as 90_privileges.sql gives them (track_event keeps its grants).
REVOKE EXECUTE ON FUNCTION s2s_private.may_track_event(name[], name) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s_private.deny_track_event(text, text) FROM PUBLIC;

-- == tracked endpoints and the orders trigger ==

-- (endpoints)
-- An endpoint that an orders trigger tracks cannot be deleted, renamed or given another
-- kind, nor s2s.endpoints truncated; TRUNCATE looks with a fresh snapshot. From
-- 32_endpoint_references.sql and 30_endpoints.sql:
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

CREATE OR REPLACE FUNCTION s2s_private.endpoints_delete_guard() RETURNS trigger
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

CREATE OR REPLACE FUNCTION s2s_private.endpoints_truncate_guard() RETURNS trigger
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

-- s2s_private.endpoints_guard: as 30_endpoints.sql has it, in the last section.

REVOKE EXECUTE ON FUNCTION s2s_private.refuse_tracked_endpoint_change(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s_private.lock_endpoints_for_truncate() FROM PUBLIC;

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

-- s2s_private.delivery_problem, s2s.retry and s2s.retry_failed (they judge a delivery by
-- the trigger's rules, src/delivery_check.c): in the mappings section and the last one.

-- == queue, retries and leases ==

-- == home of the queue (copies of production) ==

-- The database records where its queue lives (the cluster's system identifier, its own
-- OID); the worker pauses every endpoint of a copy (sql/install/65_home.sql). A database
-- updated from 0.3.0 records its current home now.
CREATE TABLE s2s_private.home (
    system_identifier numeric NOT NULL,
    database_oid      oid NOT NULL,
    adopted_at        timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE s2s_private.home IS
    'Where the queue lives (pg_control''s system identifier, the database''s OID); the worker pauses every endpoint of a copy.';

-- This cluster's system identifier and this database's OID.
CREATE FUNCTION s2s_private.current_home(OUT system_identifier numeric, OUT database_oid oid)
RETURNS record
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 's2s_current_home';

INSERT INTO s2s_private.home (system_identifier, database_oid)
SELECT h.system_identifier, h.database_oid FROM s2s_private.current_home() h;

-- Dumped with the data, every row: that is what makes a restored copy recognisable.
SELECT pg_catalog.pg_extension_config_dump('s2s_private.home', '');

-- Confirms that this database is now where the queue lives (a restore meant for
-- production): records this home and resumes the endpoints that the worker paused
-- because the database was a copy (those paused for another reason stay paused).
-- Returns how many were resumed.
CREATE FUNCTION s2s.adopt_home() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    resumed integer;
BEGIN
    DELETE FROM s2s_private.home;
    INSERT INTO s2s_private.home (system_identifier, database_oid)
    SELECT h.system_identifier, h.database_oid FROM s2s_private.current_home() h;
    UPDATE s2s.endpoints e SET paused_at = NULL, pause_reason = NULL
     WHERE e.paused_at IS NOT NULL
       AND starts_with(e.pause_reason, 'this database is a copy (');
    GET DIAGNOSTICS resumed = ROW_COUNT;
    RETURN resumed;
END
$$;

COMMENT ON FUNCTION s2s.adopt_home() IS
    'Confirms that the queue now lives in this database of this cluster (after a restore meant for production) and resumes the endpoints paused because it was a copy.';

REVOKE ALL ON TABLE s2s_private.home FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s_private.current_home() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s.adopt_home() FROM PUBLIC;

-- == mappings (issue 12) ==
-- Mappings as expressions over the row, order_time, payment_map and validated_when
-- (s2s.track_orders gains three parameters: dropped and created again, the old call forms
-- keep working through the defaults); the attribution window per endpoint, measured at the
-- time the order was placed (s2s.deliveries.ordered_at), which s2s.retry judges by too.

ALTER TABLE s2s.endpoints
    ADD COLUMN attribution_window interval CHECK (attribution_window > interval '0');
ALTER TABLE s2s.deliveries ADD COLUMN ordered_at timestamptz;

-- The roles the shop granted EXECUTE on track_orders keep it: remembered (in a setting of
-- this transaction) before the old signature is dropped, granted again on the new one.
-- (Operators pinned (added in 0.5.0): oid = integer and oid = regprocedure have no exact
-- match in pg_catalog, and one put in schema s2s would run as the updating superuser.)
SELECT pg_catalog.set_config('s2s_upgrade.track_orders_grantees',
       coalesce(pg_catalog.string_agg(CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                           ELSE pg_catalog.quote_ident(r.rolname) END, ', '),
                ''),
       true)
  FROM pg_catalog.pg_proc p,
       LATERAL pg_catalog.aclexplode(p.proacl) a
       LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
 WHERE p.oid OPERATOR(pg_catalog.=)
       's2s.track_orders(regclass, text, text, text, text, text, text, text, text, text,
                         text, text, text, text, text[], text, text)'::pg_catalog.regprocedure
   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner;
DROP FUNCTION s2s.track_orders(regclass, text, text, text, text, text, text, text, text, text,
                               text, text, text, text, text[], text, text);
CREATE FUNCTION s2s.track_orders(
    orders regclass,
    endpoint text,
    order_id text,
    amount text DEFAULT NULL,
    currency text DEFAULT NULL,
    click_ids text DEFAULT NULL,
    customer text DEFAULT NULL,
    payment text DEFAULT NULL,
    voucher text DEFAULT NULL,
    cv text DEFAULT NULL,
    client_ip text DEFAULT NULL,
    user_agent text DEFAULT NULL,
    referer text DEFAULT NULL,
    status text DEFAULT NULL,
    validated_statuses text[] DEFAULT NULL,
    user_id text DEFAULT NULL,
    event_id text DEFAULT NULL,
    order_time text DEFAULT NULL,
    payment_map jsonb DEFAULT NULL,
    validated_when text DEFAULT NULL)
RETURNS text
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's2s_track_orders';
COMMENT ON FUNCTION s2s.track_orders(regclass, text, text, text, text, text, text, text, text,
                                     text, text, text, text, text, text[], text, text, text,
                                     jsonb, text) IS
    'Makes a table of orders feed an endpoint: checks the columns and (re)creates the trigger; returns its name.';

REVOKE EXECUTE ON FUNCTION s2s.track_orders(regclass, text, text, text, text, text, text, text,
                                            text, text, text, text, text, text, text[], text,
                                            text, text, jsonb, text) FROM PUBLIC;
DO $$
DECLARE
    grantees text := pg_catalog.current_setting('s2s_upgrade.track_orders_grantees', true);
BEGIN
    IF coalesce(grantees, '') <> '' THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION s2s.track_orders(regclass, text, '
            'text, text, text, text, text, text, text, text, text, text, text, text, text[], '
            'text, text, text, jsonb, text) TO %s', grantees);
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

REVOKE EXECUTE ON FUNCTION s2s_private.delivery_problem(text, text, text, numeric, text, text,
                                                        text, boolean, text, timestamptz, bigint, text)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s.retry(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s.retry_failed(text) FROM PUBLIC;

-- == networks' documents (issue 12) ==

-- No implied currency: an endpoint's currency has no default and may be NULL (none).
-- Existing endpoints keep the currency they have (every one has one: the column was NOT
-- NULL DEFAULT 'EUR').
ALTER TABLE s2s.endpoints ALTER COLUMN currency DROP DEFAULT;
ALTER TABLE s2s.endpoints ALTER COLUMN currency DROP NOT NULL;

-- What "sent" means: a 2xx whose body matches refused_pattern is a refusal.
ALTER TABLE s2s.endpoints ADD COLUMN refused_pattern text;

-- Raises 2201B unless pattern is a refused_pattern the worker can compile: a POSIX
-- extended regular expression, compiled by PostgreSQL's engine as the worker compiles it
-- (C: src/refused.c). NULL is fine (no pattern).
CREATE FUNCTION s2s_private.check_refused_pattern(pattern text) RETURNS void
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 's2s_check_refused_pattern';

CREATE OR REPLACE FUNCTION s2s_private.endpoints_guard() RETURNS trigger
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
         WHERE d.endpoint = NEW.name AND d.status IN ('pending', 'retrying');
    END IF;

    -- Sendable again (or new): wake the worker when this transaction commits.
    IF NEW.enabled AND NEW.paused_at IS NULL
       AND (TG_OP = 'INSERT' OR NOT OLD.enabled OR OLD.paused_at IS NOT NULL) THEN
        PERFORM s2s.wake();
    END IF;
    RETURN NEW;
END
$$;

-- Enqueues one Swaarm event; returns its delivery id. A dedupe_key already used on this
-- endpoint returns the existing delivery's id and enqueues nothing; without a dedupe_key
-- every call is a new event. Only the roles the endpoint's event_roles names may
-- (s2s_private.may_track_event): new endpoints are closed to everyone but the owner.
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

REVOKE EXECUTE ON FUNCTION s2s_private.check_refused_pattern(text) FROM PUBLIC;
