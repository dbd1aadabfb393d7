/* why: every MCP tool call is audited (who, which tool, the statement or arguments, rows
   returned, duration, outcome). The MCP server writes the row after the call, in its own
   transaction, as its login role renum_mcp, which holds no privilege on any table: this function
   is its only way in. The tenant is not taken from the caller but derived from the user's
   profile, so the server cannot file a call under another tenant; a user without a client gets
   no row (the server's log still has the call). Long texts are cut to 10000 characters.
   A statement that escaped the MCP server's checks cannot forge audit rows through this
   function either: the server runs agent SQL in READ ONLY transactions, where the insert fails.
   security definer: public.mcp_audit_log is readable by tenant admins only and writable by
   nobody else; private schema, search_path = '', executable by renum_mcp only. */
create or replace function private.record_mcp_call(
  user_id uuid,
  transport text,
  tool text,
  statement text,
  row_count integer,
  duration_ms integer,
  outcome text,
  message text default null,
  agent_id uuid default null
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.mcp_audit_log (client_id, user_id, agent_id, transport, tool, statement,
                                    row_count, duration_ms, outcome, message)
  select p.client_id, p.id, record_mcp_call.agent_id, record_mcp_call.transport,
         record_mcp_call.tool, pg_catalog.left(record_mcp_call.statement, 10000),
         record_mcp_call.row_count, record_mcp_call.duration_ms, record_mcp_call.outcome,
         pg_catalog.left(record_mcp_call.message, 10000)
    from public.users as p
   where p.id = record_mcp_call.user_id
     and p.client_id is not null
$$;

comment on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) is
  'Append one MCP tool call to public.mcp_audit_log under the client of user_id (nothing for a user without a client). For the MCP login role renum_mcp only.';

revoke all on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) from public;
grant execute on function private.record_mcp_call(uuid, text, text, text, integer, integer, text, text, uuid) to renum_mcp;
