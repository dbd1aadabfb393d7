-- 0016 rollback: drop the MCP audit table and functions and take back renum_mcp's schema usage.
-- The role renum_mcp itself is kept, like 0012 keeps its bucket: roles are cluster-wide, other
-- databases of the cluster (another environment, a test template) may still hold privileges
-- granted to it, and without the functions and the schema usage it can do nothing here but
-- become anon or authenticated. Applying 0016 again finds it and checks it.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

drop function if exists private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid);
drop function if exists private.resolve_mcp_user(text);
drop table if exists public.mcp_audit_log;
revoke usage on schema private from renum_mcp;

notify pgrst, 'reload schema';
