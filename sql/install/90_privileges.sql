-- s2s_tracking install script, part 90: privileges, last so that it sees every function.
--
-- Nothing that writes a table, reads a secret or reaches the network is granted to PUBLIC.
-- The shop grants its app role what doc/outbox.md lists (USAGE on schema s2s and EXECUTE
-- on the app functions); administrative functions (preview, retry, retry_failed, pause,
-- resume, wake, track_orders, ...) stay with the extension's owner unless the shop grants
-- them to an administrator role. Default deny: every function is revoked from PUBLIC here,
-- then the pure click-ID helpers (no table, no secret, no network) are granted back.
-- PUBLIC still has no USAGE on schema s2s, so even those need the shop's GRANT USAGE.
-- Secrets live in s2s_private, on which nobody but the owner has USAGE: a later
-- GRANT SELECT ON ALL TABLES IN SCHEMA s2s reveals only the mask in s2s.endpoints.secret.
-- Trigger functions need no EXECUTE grant to fire.

REVOKE ALL ON SCHEMA s2s FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA s2s FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA s2s FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA s2s FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA s2s_private FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA s2s_private FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    s2s.is_valid_click_id(text, text),
    s2s.click_time(text),
    s2s.click_ids(text),
    s2s.cookie_merge(text, text),
    s2s.set_cookie_header(text, text, interval)
  TO PUBLIC;
