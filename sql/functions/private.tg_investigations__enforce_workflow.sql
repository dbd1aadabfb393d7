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
  final_states constant public.investigation_status[] := array['completed', 'failed', 'cancelled'];
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

revoke all on function private.tg_investigations__enforce_workflow() from public, anon, authenticated, service_role;
