-- s2s_tracking install script, part 50: the orders trigger and its administration.
--
-- s2s.track_orders(orders, endpoint, ...) creates, on the shop's orders table, one trigger
-- per endpoint that runs s2s.enqueue_conversion (C, src/enqueue.c): it enqueues one
-- conversion per validated order into s2s.deliveries, in the order's own transaction.
-- s2s.untrack_orders removes it. Both run as the caller (creating a trigger needs the
-- TRIGGER right on the orders table) and are administrative: no EXECUTE for PUBLIC.
-- Column-name arguments are quoted, never spliced (src/track_orders.c); an argument may also
-- be an SQL expression over the row, checked and kept in canonical form (src/mapping_expr.c);
-- see doc/orders.md.

CREATE FUNCTION s2s.enqueue_conversion() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's2s_enqueue_conversion';
COMMENT ON FUNCTION s2s.enqueue_conversion() IS
    'Orders trigger: enqueues one conversion per validated order and endpoint (created by s2s.track_orders).';

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

CREATE FUNCTION s2s.untrack_orders(orders regclass, endpoint text) RETURNS void
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 's2s_untrack_orders';
COMMENT ON FUNCTION s2s.untrack_orders(regclass, text) IS
    'Stops a table of orders feeding an endpoint (drops the trigger s2s.track_orders made).';

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

-- Every backend caches each endpoint's kind and currency with the trigger configuration;
-- a change to s2s.endpoints sends a (transactional) relcache invalidation that clears it.
CREATE FUNCTION s2s_private.endpoints_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 's2s_endpoints_changed';
CREATE TRIGGER endpoints_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON s2s.endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION s2s_private.endpoints_changed();

REVOKE EXECUTE ON FUNCTION s2s.enqueue_conversion() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s.track_orders(regclass, text, text, text, text, text, text, text,
                                            text, text, text, text, text, text, text[], text,
                                            text, text, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s.untrack_orders(regclass, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION s2s_private.endpoints_changed() FROM PUBLIC;
