-- s2s_tracking install script, part 65: where the queue lives (copies of production).
--
-- A copy of a shop's database (pg_dump/pg_restore into another cluster or database,
-- CREATE DATABASE ... TEMPLATE) holds production's endpoints, secrets and queue: a worker
-- serving it would send production's conversions again, with production's keys. So the
-- database records its home, the cluster's system identifier and its own OID, when the
-- extension is created, in a table dumped with the data: a restored copy carries its
-- original's row besides the one its own CREATE EXTENSION recorded. Before every claim the
-- worker checks that every row is where it runs (src/home.c); in a copy it pauses every
-- endpoint with the reason, records the new home and sends nothing until a person
-- confirms: s2s.adopt_home(), or s2s.resume(endpoint) for one endpoint. A promoted
-- standby keeps its primary's system identifier and OIDs: it is the same home.

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
