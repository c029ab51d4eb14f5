-- test/shop/schema.sql: the demo shop's database, as its administrator sets it up.
--
--   psql -v receiver=http://127.0.0.1:PORT -v ON_ERROR_STOP=1 -f test/shop/schema.sql
--
-- Run as the extension's owner (a superuser here) in the database the worker drains
-- (s2s_tracking.database), with s2s_tracking.allow_http on and loopback in
-- s2s_tracking.allowed_networks: the endpoints point at the
-- local test receiver (test/receiver/receiver.py) standing in for Affilae and Swaarm.
-- It shows the three things a shop's administrator does: create the extension and the
-- endpoints, attach the orders table with s2s.track_orders, and grant the app role what
-- the landing page, the checkout and the app events need.

CREATE EXTENSION IF NOT EXISTS s2s_tracking;

-- The shop's own orders. The tracking columns are plain columns the app fills in at
-- checkout: the Affilae click IDs ('-'-joined, as in the cookie), the Swaarm click ID
-- (which identifies the Swaarm user), and the shopper's request context.
CREATE SCHEMA shop;
CREATE TABLE shop.orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),    -- excluding tax
    currency    text NOT NULL DEFAULT 'EUR',
    customer    text,
    payment     text NOT NULL DEFAULT 'online'
                CHECK (payment IN ('online', 'bankwire', 'other')),
    voucher     text,
    aecid       text,           -- Affilae click IDs of the visitor, '-' between several
    clkid       text,           -- Swaarm click ID of the visitor (the Swaarm user id)
    client_ip   inet,
    user_agent  text,
    referer     text,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'validated', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Where the conversions go. The secrets are the program's conversion key (Affilae) and
-- the S2S token (Swaarm); once inserted, s2s.endpoints shows only a mask.
INSERT INTO s2s.endpoints (name, kind, url, secret) VALUES
    ('affilae', 'affilae', :'receiver' || '/affilae/',
     '5f0c0ffee0000000000000aa-5f0c0ffee0000000000000bb'),
    ('swaarm', 'swaarm_postback', :'receiver' || '/swaarm',
     'demo-swaarm-s2s-token');

-- A validated order is an Affilae sale: the trigger enqueues one conversion per order,
-- in the order's own transaction, when its status becomes 'validated'. A mapping is a
-- column or an SQL expression over the row (checked by track_orders, compiled once per
-- backend): the currency upper-cased, blank click IDs and vouchers left out. The click
-- IDs are judged at created_at, when the order was placed, not when it is validated.
SELECT s2s.track_orders('shop.orders', 'affilae',
    order_id => 'id', amount => 'amount', currency => $$upper(currency)$$,
    click_ids => $$nullif(btrim(aecid), '')$$,
    customer => 'customer', payment => 'payment', voucher => $$nullif(btrim(voucher), '')$$,
    client_ip => 'client_ip', user_agent => 'user_agent', referer => 'referer',
    status => 'status', validated_statuses => '{validated}',
    order_time => 'created_at');

-- The same order, when its visitor came from a Swaarm campaign, is a Swaarm postback
-- event "order" for the user identified by the clkid column (event_id is a constant here:
-- an SQL string literal; in-app purchases are sent by the app layer with s2s.track_event).
-- An order without a clkid has nothing to attribute to Swaarm: nothing is enqueued.
SELECT s2s.track_orders('shop.orders', 'swaarm',
    order_id => 'id', amount => 'amount', currency => 'currency',
    client_ip => 'client_ip', user_agent => 'user_agent',
    status => 'status', validated_statuses => '{validated}',
    user_id => 'clkid', event_id => '''order''');

-- The app role: what the landing page, the checkout and the app events need, nothing
-- more. It can neither read the secrets nor change where anything is sent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') THEN
        CREATE ROLE shop_app LOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA s2s TO shop_app;
GRANT EXECUTE ON FUNCTION
    s2s.is_valid_click_id(text, text),
    s2s.record_click(text, inet, text, text, text, text),
    s2s.click_ids(text),
    s2s.cookie_merge(text, text),
    s2s.set_cookie_header(text, text, interval),
    s2s.track_event(text, text, text, inet, text, numeric, text, numeric, text, text)
    TO shop_app;
GRANT USAGE ON SCHEMA shop TO shop_app;
GRANT SELECT, INSERT, UPDATE ON shop.orders TO shop_app;
-- An endpoint is closed to s2s.track_event until its event_roles names who may use it.
UPDATE s2s.endpoints SET event_roles = ARRAY['shop_app'] WHERE name = 'swaarm';
