-- s2s_tracking upgrade from 0.4.0 to 0.5.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- Each section below brings the statements of sql/install/ that changed, verbatim, then
-- their privileges.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.5.0'" to load this file. \quit

-- Every name below is qualified, and the operators and functions of pg_catalog come first
-- and alone (added in 0.5.0): the update runs as a superuser, and schema s2s, the
-- extension's schema and so the script's search_path, belongs to the extension's owner,
-- who could put there an operator or function matching an unqualified call better than
-- pg_catalog's (oid = regprocedure, int2 & int4, an enum's =). Set back after the script.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- == what the update runs as superuser ==
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

-- == queue layout for speed (issue 15) ==
-- Waiting rows are told from finished ones by finished_at IS NULL, never by status, so
-- that a claim (which changes status, claim_token, lease_until, attempts) names no indexed
-- column and is a HOT update. No version wrote a finish time on a waiting row; one edited
-- by hand might have, and would never be claimed again: the update stops and says how to
-- mend it, rather than change the rows itself. It writes no row of the extension's
-- tables: the superuser who runs it after the owner was demoted (doc/hardening.md) would
-- run whatever the owner attached to them (domains, inheritance children, member
-- routines replaced), which the guard above cannot all see.
DO $$
DECLARE
    n pg_catalog.int8;
BEGIN
    SELECT pg_catalog.count(*) INTO n FROM s2s.deliveries
     WHERE finished_at IS NOT NULL
       AND status OPERATOR(pg_catalog.=) ANY (ARRAY['pending'::s2s.delivery_status,
                                                    'sending'::s2s.delivery_status,
                                                    'retrying'::s2s.delivery_status]);
    IF n OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION '% waiting deliveries of s2s.deliveries have a finish time', n
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'No version of s2s_tracking writes one on a waiting delivery: they were edited by hand. From 0.5.0 on, a delivery with a finish time is never sent.',
                  HINT = 'As the extension''s owner, run UPDATE s2s.deliveries SET finished_at = NULL WHERE finished_at IS NOT NULL AND status IN (''pending'', ''sending'', ''retrying''); then update again.';
    END IF;
END
$$;

DROP INDEX s2s.deliveries_due_idx;
DROP INDEX s2s.deliveries_leased_idx;
DROP INDEX s2s.deliveries_finished_idx;

ALTER TABLE s2s.deliveries
    ADD CONSTRAINT deliveries_waiting_unfinished
        CHECK (finished_at IS NULL
               OR status OPERATOR(pg_catalog.<>) ALL (ARRAY['pending'::s2s.delivery_status,
                                                            'sending'::s2s.delivery_status,
                                                            'retrying'::s2s.delivery_status]));
-- room on each page for the claim's new row version (new pages only; VACUUM FULL or
-- pg_repack applies it to the existing ones)
ALTER TABLE s2s.deliveries SET (fillfactor = 80);

CREATE INDEX deliveries_waiting_idx ON s2s.deliveries (endpoint, next_attempt_at, id)
    WHERE finished_at IS NULL;
CREATE INDEX deliveries_finished_idx ON s2s.deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

-- s2s_private.endpoints_guard: re-enabling or resuming an endpoint finds its waiting
-- deliveries through deliveries_waiting_idx, and rewrites only those whose times change
-- (30_endpoints.sql).
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

-- == first-insert time (issue 12) ==
-- When the orders trigger first saw an order carrying a click ID that was not validated
-- yet, for a tracking without order_time: the order's click IDs are judged at that time
-- when it is validated later (a bank wire), never at validation (src/first_seen.c). One
-- row per endpoint and order ID, the delivery's own key: a trigger made again by
-- track_orders, or restored by pg_dump under another OID, finds its orders' rows. The
-- trigger removes a row when it enqueues (or skips) the order's conversion; the worker
-- purges the rows of orders never validated after s2s_tracking.retention. No foreign key
-- and no other index: each would cost the checkout a lookup or a write.
CREATE TABLE s2s_private.order_first_seen (
    endpoint      text NOT NULL,
    order_id      text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (endpoint, order_id)
);
REVOKE ALL ON s2s_private.order_first_seen FROM PUBLIC;
-- The trigger writes this table as the owner of s2s.deliveries (src/enqueue.c), and the
-- worker runs as the extension's owner: an object made by an update belongs to whoever
-- runs it, another superuser once the owner was made NOSUPERUSER (doc/hardening.md). Every
-- object of the extension goes to the extension's owner, as at a fresh install: this
-- table, and what an earlier update run so made (s2s_private.home, read and rewritten by
-- the worker; SECURITY DEFINER functions such as s2s.adopt_home, which must not run as
-- that other superuser).
DO $$
DECLARE
    ext pg_catalog.oid := (SELECT e.oid FROM pg_catalog.pg_extension e
        WHERE e.extname OPERATOR(pg_catalog.=) 's2s_tracking');
    owner pg_catalog.oid := (SELECT e.extowner FROM pg_catalog.pg_extension e
        WHERE e.oid OPERATOR(pg_catalog.=) ext);
    o record;
BEGIN
    FOR o IN
        SELECT CASE
                 WHEN c.oid IS NOT NULL THEN
                   pg_catalog.format('ALTER TABLE %s', d.objid::pg_catalog.regclass)
                 WHEN p.oid IS NOT NULL THEN
                   pg_catalog.format('ALTER ROUTINE %s', d.objid::pg_catalog.regprocedure)
                 WHEN t.oid IS NOT NULL THEN
                   pg_catalog.format('ALTER TYPE %s', d.objid::pg_catalog.regtype)
                 ELSE pg_catalog.format('ALTER SCHEMA %I', n.nspname)
               END AS target
          FROM pg_catalog.pg_depend d
          LEFT JOIN pg_catalog.pg_class c ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND c.oid OPERATOR(pg_catalog.=) d.objid
          LEFT JOIN pg_catalog.pg_proc p ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
               AND p.oid OPERATOR(pg_catalog.=) d.objid
          LEFT JOIN pg_catalog.pg_type t ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
               AND t.oid OPERATOR(pg_catalog.=) d.objid
          LEFT JOIN pg_catalog.pg_namespace n ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
               AND n.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) ext AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND (c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm']::pg_catalog."char"[])
                OR p.oid IS NOT NULL OR n.oid IS NOT NULL
                -- a table's row type (a member on 17 and later) and an array type follow
                -- their table and element type, and refuse an ALTER TYPE of their own; a
                -- composite type made by CREATE TYPE is altered as a type
                OR ((t.typrelid OPERATOR(pg_catalog.=) 0
                     OR EXISTS (SELECT FROM pg_catalog.pg_class r
                                 WHERE r.oid OPERATOR(pg_catalog.=) t.typrelid
                                   AND r.relkind OPERATOR(pg_catalog.=) 'c'))
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e
                                     WHERE e.typarray OPERATOR(pg_catalog.=) t.oid)))
           AND COALESCE(c.relowner, p.proowner, t.typowner, n.nspowner)
               OPERATOR(pg_catalog.<>) owner
           -- what a superuser's update made, not what the shop gave to a role on purpose
           AND EXISTS (SELECT FROM pg_catalog.pg_roles r
                        WHERE r.oid OPERATOR(pg_catalog.=)
                              COALESCE(c.relowner, p.proowner, t.typowner, n.nspowner)
                          AND r.rolsuper)
    LOOP
        EXECUTE pg_catalog.format('%s OWNER TO %I', o.target, pg_catalog.pg_get_userbyid(owner));
    END LOOP;
END
$$;
SELECT pg_catalog.pg_extension_config_dump('s2s_private.order_first_seen', '');
