-- s2s_tracking install script, part 80: what pg_dump must keep besides the tables.
--
-- 00_schema.sql marks the configuration and queue tables for pg_dump, which then dumps
-- their rows but not the state of their identity sequences: after a restore the next
-- delivery (or click) would be given id 1 again and collide with a restored row, so that
-- track_event, and the orders trigger with it, would fail. Marking the sequences too
-- makes pg_dump restore their position.
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('s2s.deliveries', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('s2s.clicks', 'id'), '');
