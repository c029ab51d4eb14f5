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

-- == privileges and track_event ==

-- == tracked endpoints and the orders trigger ==

-- == queue, retries and leases ==
