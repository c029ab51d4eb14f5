-- s2s_tracking upgrade from 0.4.0 to 0.5.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- Each section below brings the statements of sql/install/ that changed, verbatim, then
-- their privileges.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.5.0'" to load this file. \quit

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
SELECT pg_catalog.pg_extension_config_dump('s2s_private.order_first_seen', '');
