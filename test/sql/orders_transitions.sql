-- Every status transition counts, whatever set the status: the statement, a shop's own
-- BEFORE trigger (a state machine), a bulk UPDATE. An order validated again is looked up,
-- not inserted again: no identity value spent, no tuple written.
SET client_min_messages = warning;
CREATE SCHEMA tt;
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('tt_aff', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false);
-- no implied currency since 0.4.0: these endpoints name theirs
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name = 'tt_aff';
SELECT lpad(to_hex(extract(epoch FROM now())::bigint - 3600), 8, '0') || '0000000000000001' AS c1
\gset
CREATE TABLE tt.orders (
    id int PRIMARY KEY,
    number text NOT NULL,
    amount numeric(12,2),
    click_ids text,
    status varchar(10) NOT NULL DEFAULT 'new',
    paid_at timestamptz,
    note text
);
-- The shop's state machine: filling paid_at makes the order paid; the statement never
-- names the status column.
CREATE FUNCTION tt.paid_when_paid_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.paid_at IS NOT NULL AND OLD.paid_at IS NULL THEN
        NEW.status := 'paid';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER paid_when_paid_at BEFORE UPDATE ON tt.orders
    FOR EACH ROW EXECUTE FUNCTION tt.paid_when_paid_at();
SELECT s2s.track_orders('tt.orders', 'tt_aff', order_id => 'number', amount => 'amount',
                        click_ids => 'click_ids', status => 'status',
                        validated_statuses => ARRAY['paid', 'shipped']);
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 's2s_track_tt_aff';
CREATE VIEW tt.d AS
SELECT dedupe_key, amount, status, last_error FROM s2s.deliveries
 WHERE endpoint = 'tt_aff' ORDER BY dedupe_key;

INSERT INTO tt.orders (id, number, amount, click_ids) VALUES
    (1, 'T-1', 10, :'c1'), (2, 'T-2', 20, :'c1'), (3, 'T-3', 30, :'c1'), (4, 'T-4', 40, :'c1');
SELECT * FROM tt.d;
-- paid by the shop's trigger: enqueued
UPDATE tt.orders SET paid_at = now() WHERE id = 1;
SELECT * FROM tt.d;
-- a bulk UPDATE whose rows the shop's trigger makes paid, next to one it leaves alone
UPDATE tt.orders SET paid_at = now() WHERE id IN (2, 3);
UPDATE tt.orders SET note = 'gift wrap' WHERE id = 4;
SELECT * FROM tt.d;
-- updates of a validated order that leave or keep it validated: nothing more
UPDATE tt.orders SET note = 'left at the door' WHERE id = 1;
UPDATE tt.orders SET status = 'shipped' WHERE id = 1;
UPDATE tt.orders SET status = status WHERE id IN (1, 2);
SELECT dedupe_key, count(*) FROM s2s.deliveries WHERE endpoint = 'tt_aff' GROUP BY 1 ORDER BY 1;

-- An enqueued order validated again and again (shipped, cancelled, paid, ...): every time
-- the delivery is found by its key before anything is written, so the identity does not
-- move and s2s.deliveries gets no tuple, not even a dead one.
SELECT last_value AS seq_before FROM s2s.deliveries_id_seq \gset
BEGIN;
-- (counts of this backend not yet reported: the difference is this transaction's)
SELECT pg_stat_get_xact_tuples_inserted('s2s.deliveries'::regclass) AS ins_before \gset
UPDATE tt.orders SET status = 'cancelled' WHERE id = 1;
UPDATE tt.orders SET status = 'paid' WHERE id = 1;
UPDATE tt.orders SET status = 'cancelled' WHERE id IN (1, 2, 3);
UPDATE tt.orders SET status = 'paid' WHERE id IN (1, 2, 3);
UPDATE tt.orders SET status = 'new' WHERE id = 1;
UPDATE tt.orders SET status = 'shipped' WHERE id = 1;
SELECT pg_stat_get_xact_tuples_inserted('s2s.deliveries'::regclass) - :ins_before
       AS tuples_written;
COMMIT;
SELECT last_value = :seq_before AS identity_unchanged FROM s2s.deliveries_id_seq;
SELECT dedupe_key, count(*) FROM s2s.deliveries WHERE endpoint = 'tt_aff' GROUP BY 1 ORDER BY 1;
-- ... and a first validation by UPDATE still inserts (the look-up finds nothing)
UPDATE tt.orders SET status = 'paid' WHERE id = 4;
SELECT * FROM tt.d;

-- The same with an enum status and a char(n) status: compared as values, not bytes.
CREATE TYPE tt.state AS ENUM ('new', 'paid', 'cancelled');
CREATE TABLE tt.orders_e (number text PRIMARY KEY, amount numeric, click_ids text,
                          state tt.state NOT NULL DEFAULT 'new', code char(8) NOT NULL DEFAULT 'new',
                          paid boolean NOT NULL DEFAULT false);
CREATE FUNCTION tt.state_from_paid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.paid AND NOT OLD.paid THEN
        NEW.state := 'paid';
        NEW.code := 'paid';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER state_from_paid BEFORE UPDATE ON tt.orders_e
    FOR EACH ROW EXECUTE FUNCTION tt.state_from_paid();
INSERT INTO s2s.endpoints (name, kind, url, secret, enabled) VALUES
    ('tt_aff2', 'affilae', 'https://lb.affilae.com/', '0123456789abcdef01234567-0123456789abcdef01234567', false);
UPDATE s2s.endpoints SET currency = 'EUR' WHERE name = 'tt_aff2';
SELECT s2s.track_orders('tt.orders_e', 'tt_aff', order_id => 'number', amount => 'amount',
                        click_ids => 'click_ids', status => 'state',
                        validated_statuses => ARRAY['paid']);
SELECT s2s.track_orders('tt.orders_e', 'tt_aff2', order_id => 'number', amount => 'amount',
                        click_ids => 'click_ids', status => 'code',
                        validated_statuses => ARRAY['paid']);
INSERT INTO tt.orders_e (number, amount, click_ids) VALUES ('E-1', 5, :'c1');
UPDATE tt.orders_e SET paid = true;
SELECT endpoint, dedupe_key, status FROM s2s.deliveries WHERE dedupe_key = 'order:E-1' ORDER BY 1;
-- char(n): the same status with other trailing blanks is no transition
UPDATE tt.orders_e SET code = 'new';
UPDATE tt.orders_e SET code = 'paid    ';
UPDATE tt.orders_e SET code = 'paid';
SELECT endpoint, count(*) FROM s2s.deliveries WHERE dedupe_key = 'order:E-1' GROUP BY 1 ORDER BY 1;

-- The status column is no longer a dependency of the trigger: its type can change while
-- the table is tracked (the trigger's configuration is rebuilt and still works).
ALTER TABLE tt.orders ALTER COLUMN status TYPE varchar(20);
INSERT INTO tt.orders (id, number, amount, click_ids) VALUES (5, 'T-5', 50, :'c1');
UPDATE tt.orders SET paid_at = now() WHERE id = 5;
SELECT * FROM tt.d WHERE dedupe_key = 'order:T-5';

-- Without a status column the trigger still fires on INSERT only.
CREATE TABLE tt.plain (number text, amount numeric, click_ids text);
SELECT s2s.track_orders('tt.plain', 'tt_aff', order_id => 'number', amount => 'amount',
                        click_ids => 'click_ids');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'tt.plain'::regclass;

-- A configuration made unusable (a mapped column dropped): an UPDATE that leaves the
-- status alone still works, as when it did not fire the trigger; one that validates the
-- order, like an INSERT, says what is wrong.
CREATE TABLE tt.broken (number text, amount numeric, click_ids text, status text, note text);
SELECT s2s.track_orders('tt.broken', 'tt_aff', order_id => 'number', amount => 'amount',
                        click_ids => 'click_ids', status => 'status',
                        validated_statuses => ARRAY['paid']);
INSERT INTO tt.broken VALUES ('B-1', 5, :'c1', 'new', NULL);
ALTER TABLE tt.broken DROP COLUMN click_ids;
UPDATE tt.broken SET note = 'called the customer';
UPDATE tt.broken SET status = 'new', note = 'again';
UPDATE tt.broken SET status = 'paid';
SELECT number, status, note FROM tt.broken;

DROP SCHEMA tt CASCADE;
DELETE FROM s2s.deliveries WHERE endpoint LIKE 'tt\_%';
DELETE FROM s2s.endpoints WHERE name LIKE 'tt\_%';
