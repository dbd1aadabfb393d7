/* why: the one write behind every investigation RPC (backend.start_, report_, complete_,
   fail_ and cancel_investigation, and the owner's public.cancel_investigation through
   private.cancel_own_investigation), as private.update_agent_execution is for executions:
   lock the row (so concurrent calls are serialized and exactly one claim wins), PT404 if it
   does not exist, then one update that sets `status` (null keeps it) and every given value
   (null keeps the stored one). Which transitions, progress and outputs are legal is the
   workflow trigger's business (private.tg_investigations__enforce_workflow), for this path as
   for any writer. Two things only an RPC knows are checked here, generically:
   - naming a status asks for a transition; a row already in that status cannot make it
     (RNI01): a second start of a processing row is a lost race, not a no-op;
   - a report without a status is progress, which only a processing row can make (RNI03), even
     when the values reported equal the stored ones: that is how a worker learns its
     investigation was cancelled.
   security invoker: executable by service_role only (and called by the owner's definer). */
create or replace function private.update_investigation(
  investigation_id uuid,
  status public.investigation_status default null,
  progress double precision default null,
  current_phase text default null,
  results jsonb default null,
  summary text default null,
  confidence_score double precision default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null,
  error text default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status public.investigation_status;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = update_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', update_investigation.investigation_id);
  end if;
  if update_investigation.status = current_status then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to %s',
                                  update_investigation.investigation_id, current_status,
                                  update_investigation.status),
      hint = 'It is already there: another call made this transition first.';
  end if;
  if update_investigation.status is null and current_status <> 'processing' then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress cannot change',
                                  update_investigation.investigation_id, current_status),
      hint = case when current_status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;

  update public.investigations as i
     set status = coalesce(update_investigation.status, i.status),
         progress = coalesce(update_investigation.progress, i.progress),
         current_phase = coalesce(update_investigation.current_phase, i.current_phase),
         results = coalesce(update_investigation.results, i.results),
         summary = coalesce(update_investigation.summary, i.summary),
         confidence_score = coalesce(update_investigation.confidence_score, i.confidence_score),
         anomalies_found = coalesce(update_investigation.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(update_investigation.total_records_analyzed,
                                           i.total_records_analyzed),
         error = coalesce(update_investigation.error, i.error)
   where i.id = update_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) is
  'The write behind every investigation RPC: locks the row (PT404 if missing), refuses a transition to the current status (RNI01) and progress on a row that is not processing (RNI03), then sets status and the given values (null keeps one); the workflow trigger enforces the rest.';

revoke all on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) from public, anon, authenticated, service_role;
grant execute on function private.update_investigation(uuid, public.investigation_status, double precision, text, jsonb, text, double precision, integer, bigint, text) to service_role;
