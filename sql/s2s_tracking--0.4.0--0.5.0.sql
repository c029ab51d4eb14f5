-- s2s_tracking upgrade from 0.4.0 to 0.5.0 (ALTER EXTENSION s2s_tracking UPDATE).
--
-- Each section below brings the statements of sql/install/ that changed, verbatim, then
-- their privileges.
\echo Use "ALTER EXTENSION s2s_tracking UPDATE TO '0.5.0'" to load this file. \quit
