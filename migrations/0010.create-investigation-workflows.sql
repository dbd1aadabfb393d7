-- depends: 0008.create-document-chunks-fts-index
--
-- 0010 create-investigation-workflows
-- what: the investigation workflow of seed 001 (pending -> processing -> completed | failed |
-- cancelled): an `error` column, the trigger that enforces the workflow for every writer, the RPCs
-- create_investigation and cancel_investigation (owners) and start/report progress/complete/fail
-- (the worker, service_role), and tighter column grants so owners cannot bypass the workflow.
-- why: 0006 let owners PATCH `status` directly, so any owner could mark their own investigation
-- completed. Now status changes only through the functions (owners: cancel) and the trigger
-- refuses illegal changes with documented SQLSTATEs RNI01..RNI05 (docs/investigations.md).
-- Owners may still update session_id at any time and query, data_source, filters and
-- anomaly_types while the investigation is pending.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

alter table public.investigations
  add column error text constraint investigations_error_chk check (length(error) between 1 and 10000);
comment on column public.investigations.error is
  'Why the investigation failed (set by fail_investigation together with status failed); null otherwise.';

-- Owners keep UPDATE on (session_id, query, data_source, filters, anomaly_types); status goes.
revoke update (status) on table public.investigations from authenticated;

-- >>> sql/functions/private.tg_investigations__enforce_workflow.sql
/* why: the investigation workflow is a rule of the data, not of one client: the worker
   (service_role), an owner over PostgREST, the backend and the SQL console all write the same
   table, so one trigger decides what any insert or update may do (docs/investigations.md):
   - status: a new row is 'pending'; then pending -> processing | cancelled | failed and
     processing -> completed | failed | cancelled; a final state (completed, failed, cancelled)
     is never left (RNI01).
   - progress never decreases (RNI02); completion sets it to 1 (whatever was sent), so a
     completed investigation always reads 100%.
   - progress and outputs (progress, current_phase, results, summary, confidence_score,
     anomalies_found, total_records_analyzed) change only while the row is processing, including
     the update that ends processing; a new row has none (RNI03).
   - the question (query, data_source, filters, anomaly_types) is frozen once the row leaves
     pending, so results always answer the question stored beside them (RNI04).
   - error is written only by the update that makes the row failed (RNI05).
   - started_at and completed_at belong to the database: started_at is stamped when processing
     starts, completed_at when a final state is reached; any value written to them is replaced.
   Everything raises before the row is written, so a refused statement changes nothing.
   security invoker: it only inspects and adjusts the row being written. */
create or replace function private.tg_investigations__enforce_workflow()
returns trigger
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  final_states constant text[] := array['completed', 'failed', 'cancelled'];
begin
  if tg_op = 'INSERT' then
    if new.status <> 'pending' then
      raise exception using
        errcode = 'RNI01',
        message = pg_catalog.format('a new investigation starts pending, not %s', new.status),
        hint = 'Create it, then start_investigation / cancel_investigation / fail_investigation.';
    end if;
    if new.progress <> 0 or new.current_phase is not null or new.results <> '[]'::jsonb
       or new.summary is not null or new.confidence_score is not null
       or new.anomalies_found <> 0 or new.total_records_analyzed <> 0 then
      raise exception using
        errcode = 'RNI03',
        message = 'a new investigation has no progress or results yet',
        hint = 'Progress and results are reported while the investigation is processing.';
    end if;
    if new.error is not null then
      raise exception using
        errcode = 'RNI05',
        message = 'a new investigation has no error',
        hint = 'error is written by fail_investigation.';
    end if;
    new.started_at := null;
    new.completed_at := null;
    return new;
  end if;

  if new.status is distinct from old.status
     and not ((old.status = 'pending' and new.status in ('processing', 'cancelled', 'failed'))
              or (old.status = 'processing' and new.status = any (final_states))) then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to %s',
                                  old.id, old.status, new.status),
      hint = case when old.status = any (final_states)
                  then 'A completed, failed or cancelled investigation never changes status.'
                  else 'Allowed: pending -> processing | cancelled | failed; processing -> completed | failed | cancelled.'
             end;
  end if;

  if old.status <> 'pending'
     and (new.query, new.data_source, new.filters, new.anomaly_types)
         is distinct from (old.query, old.data_source, old.filters, old.anomaly_types) then
    raise exception using
      errcode = 'RNI04',
      message = pg_catalog.format('investigation %s is %s: its query, data_source, filters and anomaly_types can no longer change',
                                  old.id, old.status),
      hint = 'Create a new investigation for a different question.';
  end if;

  if new.status = 'completed' and old.status <> 'completed' then
    new.progress := 1;
  end if;

  if old.status <> 'processing'
     and (new.progress, new.current_phase, new.results, new.summary, new.confidence_score,
          new.anomalies_found, new.total_records_analyzed)
         is distinct from (old.progress, old.current_phase, old.results, old.summary,
                           old.confidence_score, old.anomalies_found, old.total_records_analyzed) then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress and results cannot change',
                                  old.id, old.status),
      hint = case when old.status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;

  if new.progress < old.progress then
    raise exception using
      errcode = 'RNI02',
      message = pg_catalog.format('investigation %s: progress cannot decrease (from %s to %s)',
                                  old.id, old.progress, new.progress);
  end if;

  if new.error is distinct from old.error
     and not (new.status = 'failed' and old.status <> 'failed') then
    raise exception using
      errcode = 'RNI05',
      message = pg_catalog.format('investigation %s: error is written only when it fails', old.id),
      hint = 'Call fail_investigation(investigation_id, error).';
  end if;

  if old.status = 'pending' and new.status = 'processing' then
    new.started_at := pg_catalog.now();
  else
    new.started_at := old.started_at;
  end if;
  if new.status = any (final_states) and not old.status = any (final_states) then
    new.completed_at := pg_catalog.now();
  else
    new.completed_at := old.completed_at;
  end if;
  return new;
end;
$$;

comment on function private.tg_investigations__enforce_workflow() is
  'Trigger on public.investigations: valid status transitions only (RNI01), progress never decreasing (RNI02) and set to 1 on completion, progress/results only while processing (RNI03), question frozen after pending (RNI04), error only on failure (RNI05); stamps started_at and completed_at.';

revoke all on function private.tg_investigations__enforce_workflow() from public;
-- <<< sql/functions/private.tg_investigations__enforce_workflow.sql

create trigger investigations_enforce_workflow
  before insert or update on public.investigations
  for each row execute function private.tg_investigations__enforce_workflow();

-- >>> sql/functions/private.cancel_investigation.sql
/* why: cancelling writes status, which owners may not write directly (no column privilege), so
   this function does it for them. security definer, therefore it re-checks what RLS would: for
   an API request (role anon/authenticated) the row must belong to the caller (user_id =
   auth.uid()) in the caller's active client, else it answers PT404 exactly as for an unknown id,
   so it discloses nothing about other users' investigations. Any other caller (service_role, the
   backend's own login) may cancel any investigation. Only pending or processing rows can be
   cancelled (RNI01); the row is locked before its status is read, so a cancel racing with
   complete_investigation either wins or fails with RNI01. The workflow trigger still applies. */
create or replace function private.cancel_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  request_role text := pg_catalog.current_setting('role', true);
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = cancel_investigation.investigation_id
     and (request_role not in ('anon', 'authenticated')
          or (i.user_id = auth.uid() and i.client_id = private.current_client_id('viewer')))
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', cancel_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to cancelled',
                                  cancel_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can be cancelled.';
  end if;
  update public.investigations as i
     set status = 'cancelled'
   where i.id = cancel_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function private.cancel_investigation(uuid) is
  'Cancels a pending or processing investigation of the calling user (API roles) or any investigation (other roles): PT404 when not found or not the caller''s, RNI01 when it already ended. Called through public.cancel_investigation.';

revoke all on function private.cancel_investigation(uuid) from public;
grant execute on function private.cancel_investigation(uuid) to authenticated, service_role;
-- <<< sql/functions/private.cancel_investigation.sql

-- >>> sql/functions/public.create_investigation.sql
/* why: the RPC a signed-in user calls to ask for an investigation
   (`supabase.rpc('create_investigation', {query, data_source, filters, anomaly_types})`). The row
   is owned by the caller: user_id and client_id come from the column defaults (auth.uid() and the
   caller's active client), and the owner-only insert policy re-checks both. It starts pending;
   the worker picks it up with start_investigation. Only `authenticated` may execute it: the
   backend (service_role) has no user of its own and inserts into public.investigations with
   client_id and user_id instead (the workflow trigger applies there too).
   security invoker: the caller's own privileges and RLS decide. */
create or replace function public.create_investigation(
  query text,
  data_source text,
  filters jsonb default '{}'::jsonb,
  anomaly_types jsonb default '[]'::jsonb,
  session_id text default null
)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  insert into public.investigations (query, data_source, filters, anomaly_types, session_id)
  values (
    create_investigation.query,
    create_investigation.data_source,
    coalesce(create_investigation.filters, '{}'::jsonb),
    coalesce(create_investigation.anomaly_types, '[]'::jsonb),
    create_investigation.session_id
  )
  returning *
$$;

comment on function public.create_investigation(text, text, jsonb, jsonb, text) is
  'Create an investigation owned by the caller, in the caller''s client, status pending. filters: a JSON object; anomaly_types: a JSON array. Returns the new row. Errors: 42501 caller without an active client (or not a signed-in user), 23514 empty query/data_source or wrong JSON types.';

revoke all on function public.create_investigation(text, text, jsonb, jsonb, text) from public, anon, authenticated, service_role;
grant execute on function public.create_investigation(text, text, jsonb, jsonb, text) to authenticated;
-- <<< sql/functions/public.create_investigation.sql

-- >>> sql/functions/public.start_investigation.sql
/* why: the worker claims a pending investigation: pending -> processing, and the database stamps
   started_at. Starting is a claim, so starting a row that is not pending fails (RNI01) instead
   of letting two workers process the same investigation. The row is locked (for update) before
   its status is read, so concurrent calls are serialized and exactly one succeeds.
   Granted to service_role only: users never start their own investigations.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.start_investigation(investigation_id uuid)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = start_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', start_investigation.investigation_id);
  end if;
  if current_status <> 'pending' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to processing',
                                  start_investigation.investigation_id, current_status),
      hint = 'Only a pending investigation can be started.';
  end if;
  update public.investigations as i
     set status = 'processing'
   where i.id = start_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.start_investigation(uuid) is
  'Worker (service_role): start a pending investigation (status processing; started_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 not pending.';

revoke all on function public.start_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.start_investigation(uuid) to service_role;
-- <<< sql/functions/public.start_investigation.sql

-- >>> sql/functions/public.report_investigation_progress.sql
/* why: the worker reports progress while it runs; every update reaches the owner's browser
   through the supabase_realtime publication. progress is required and may not decrease (RNI02,
   from the workflow trigger); the other arguments are optional and a null keeps the stored value.
   `results` replaces the stored array (send the partial results found so far), so a retried call
   is idempotent. Reporting on an investigation that is not processing fails with RNI03, which
   also tells a worker that the owner cancelled it. The row is locked before its status is read.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.report_investigation_progress(
  investigation_id uuid,
  progress double precision,
  current_phase text default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  if report_investigation_progress.progress is null then
    raise exception using errcode = '22004', message = 'progress is required';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = report_investigation_progress.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found',
                                  report_investigation_progress.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI03',
      message = pg_catalog.format('investigation %s is %s, not processing: its progress cannot change',
                                  report_investigation_progress.investigation_id, current_status),
      hint = case when current_status = 'pending' then 'Call start_investigation first.'
                  else 'The investigation has ended; stop working on it.' end;
  end if;
  update public.investigations as i
     set progress = report_investigation_progress.progress,
         current_phase = coalesce(report_investigation_progress.current_phase, i.current_phase),
         results = coalesce(report_investigation_progress.results, i.results),
         anomalies_found = coalesce(report_investigation_progress.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(report_investigation_progress.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = report_investigation_progress.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) is
  'Worker (service_role): report progress (0..1, never decreasing) of a processing investigation, and optionally its current phase, partial results (replacing the stored array), anomalies found and records analyzed; null keeps a value. Returns the row. Errors: PT404 unknown id, RNI03 not processing (e.g. cancelled), RNI02 progress decreased, 23514 progress outside [0, 1] or results not an array, 22004 progress null.';

revoke all on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.report_investigation_progress(uuid, double precision, text, jsonb, integer, bigint) to service_role;
-- <<< sql/functions/public.report_investigation_progress.sql

-- >>> sql/functions/public.complete_investigation.sql
/* why: the worker finishes an investigation: processing -> completed with its summary and
   confidence score (and, optionally, the final results and counts; null keeps a value). The
   workflow trigger sets progress to 1 and completed_at. Only a processing investigation can be
   completed (RNI01), checked under a row lock. Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.complete_investigation(
  investigation_id uuid,
  summary text default null,
  confidence_score double precision default null,
  results jsonb default null,
  anomalies_found integer default null,
  total_records_analyzed bigint default null
)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  select i.status into current_status
    from public.investigations as i
   where i.id = complete_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', complete_investigation.investigation_id);
  end if;
  if current_status <> 'processing' then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to completed',
                                  complete_investigation.investigation_id, current_status),
      hint = 'Only a processing investigation can be completed.';
  end if;
  update public.investigations as i
     set status = 'completed',
         summary = coalesce(complete_investigation.summary, i.summary),
         confidence_score = coalesce(complete_investigation.confidence_score, i.confidence_score),
         results = coalesce(complete_investigation.results, i.results),
         anomalies_found = coalesce(complete_investigation.anomalies_found, i.anomalies_found),
         total_records_analyzed = coalesce(complete_investigation.total_records_analyzed,
                                           i.total_records_analyzed)
   where i.id = complete_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) is
  'Worker (service_role): complete a processing investigation with its summary and confidence score (0..1), optionally final results and counts (null keeps a value). progress becomes 1 and completed_at is set by the database. Returns the row. Errors: PT404 unknown id, RNI01 not processing, 23514 confidence_score outside [0, 1].';

revoke all on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) from public, anon, authenticated, service_role;
grant execute on function public.complete_investigation(uuid, text, double precision, jsonb, integer, bigint) to service_role;
-- <<< sql/functions/public.complete_investigation.sql

-- >>> sql/functions/public.fail_investigation.sql
/* why: the worker records that an investigation failed, with the error text the owner will see:
   pending or processing -> failed; completed_at is set by the database. Failing an investigation
   that already ended fails (RNI01), checked under a row lock. The error text is required (22004)
   and not blank (22023); longer than 10000 characters is refused by investigations_error_chk.
   Granted to service_role only.
   security invoker: service_role has the table privileges and bypasses RLS. */
create or replace function public.fail_investigation(investigation_id uuid, error text)
returns public.investigations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  current_status text;
  result public.investigations;
begin
  if fail_investigation.error is null then
    raise exception using errcode = '22004', message = 'error is required';
  end if;
  if pg_catalog.btrim(fail_investigation.error) = '' then
    raise exception using errcode = '22023', message = 'error must not be blank';
  end if;
  select i.status into current_status
    from public.investigations as i
   where i.id = fail_investigation.investigation_id
     for update;
  if not found then
    raise exception using
      errcode = 'PT404',
      message = pg_catalog.format('investigation %s not found', fail_investigation.investigation_id);
  end if;
  if current_status not in ('pending', 'processing') then
    raise exception using
      errcode = 'RNI01',
      message = pg_catalog.format('investigation %s cannot go from %s to failed',
                                  fail_investigation.investigation_id, current_status),
      hint = 'Only a pending or processing investigation can fail.';
  end if;
  update public.investigations as i
     set status = 'failed',
         error = fail_investigation.error
   where i.id = fail_investigation.investigation_id
  returning i.* into result;
  return result;
end;
$$;

comment on function public.fail_investigation(uuid, text) is
  'Worker (service_role): mark a pending or processing investigation failed with an error text (completed_at set by the database). Returns the row. Errors: PT404 unknown id, RNI01 already ended, 22004 error null, 22023 error blank, 23514 error longer than 10000 characters.';

revoke all on function public.fail_investigation(uuid, text) from public, anon, authenticated, service_role;
grant execute on function public.fail_investigation(uuid, text) to service_role;
-- <<< sql/functions/public.fail_investigation.sql

-- >>> sql/functions/public.cancel_investigation.sql
/* why: the RPC an owner calls to stop their investigation
   (`supabase.rpc('cancel_investigation', {investigation_id})`); the backend may call it too.
   Owners have no UPDATE privilege on status (a direct PATCH could otherwise pick any status), so
   the update happens in private.cancel_investigation, a security definer function that re-checks
   ownership. This wrapper is what PostgREST exposes.
   security invoker: it only delegates. */
create or replace function public.cancel_investigation(investigation_id uuid)
returns public.investigations
language sql
volatile
security invoker
set search_path = ''
as $$
  select * from private.cancel_investigation(cancel_investigation.investigation_id)
$$;

comment on function public.cancel_investigation(uuid) is
  'Cancel a pending or processing investigation: its owner (a signed-in user of an active client) or service_role. completed_at is set by the database; a worker''s next progress report fails with RNI03. Returns the row. Errors: PT404 unknown id or not the caller''s own, RNI01 already ended.';

revoke all on function public.cancel_investigation(uuid) from public, anon, authenticated, service_role;
grant execute on function public.cancel_investigation(uuid) to authenticated, service_role;
-- <<< sql/functions/public.cancel_investigation.sql

notify pgrst, 'reload schema';
