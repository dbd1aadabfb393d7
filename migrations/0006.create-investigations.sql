-- depends: 0004.create-knowledge
--
-- 0006 create-investigations
-- what: public.investigations from seed 001 (long-running analyses whose progress a frontend
-- watches through Supabase Realtime), its seven indexes, owner-only policies, and membership in
-- the supabase_realtime publication.
-- why: seed 001 keyed rows only by user; here each also carries its owner's client_id (the
-- composite foreign key to users proves the owner belongs to that client), so the table shards
-- and isolates like every other tenant table.

set local lock_timeout = '10s';
set local statement_timeout = '5min';

create table public.investigations (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  user_id uuid not null default auth.uid(),
  session_id text,
  query text not null,
  data_source text not null,
  status text not null default 'pending',
  progress double precision not null default 0,
  current_phase text,
  results jsonb not null default '[]'::jsonb,
  summary text,
  confidence_score double precision,
  anomalies_found integer not null default 0,
  total_records_analyzed bigint not null default 0,
  filters jsonb not null default '{}'::jsonb,
  anomaly_types jsonb not null default '[]'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  constraint investigations_user_fk foreign key (client_id, user_id)
    references public.users (client_id, id) on delete cascade,
  constraint investigations_query_chk check (length(btrim(query)) between 1 and 10000),
  constraint investigations_data_source_chk check (length(btrim(data_source)) between 1 and 100),
  constraint investigations_status_chk
    check (status in ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  constraint investigations_progress_range_chk check (progress >= 0 and progress <= 1),
  constraint investigations_confidence_score_range_chk
    check (confidence_score is null or (confidence_score >= 0 and confidence_score <= 1)),
  constraint investigations_anomalies_found_chk check (anomalies_found >= 0),
  constraint investigations_total_records_analyzed_chk check (total_records_analyzed >= 0),
  constraint investigations_results_chk check (jsonb_typeof(results) = 'array'),
  constraint investigations_filters_chk check (jsonb_typeof(filters) = 'object'),
  constraint investigations_anomaly_types_chk check (jsonb_typeof(anomaly_types) = 'array')
);
comment on table public.investigations is
  'Long-running investigations (seed 001). Visible only to their owner (and service_role); progress in [0, 1]; published to supabase_realtime.';
comment on column public.investigations.status is 'pending | processing | completed | failed | cancelled.';
comment on column public.investigations.progress is 'Fraction done, 0.0 to 1.0.';

-- The seven indexes of seed 001, plus the one backing the composite foreign key.
create index investigations_user_id_idx on public.investigations (user_id);
create index investigations_status_idx on public.investigations (status);
create index investigations_created_at_idx on public.investigations (created_at desc);
create index investigations_user_status_idx on public.investigations (user_id, status);
create index investigations_session_id_idx on public.investigations (session_id);
create index investigations_filters_idx on public.investigations using gin (filters);
create index investigations_results_idx on public.investigations using gin (results);
create index investigations_client_user_idx on public.investigations (client_id, user_id);

create trigger investigations_set_updated_at
  before update on public.investigations
  for each row execute function private.tg__set_updated_at();
create trigger investigations_forbid_client_id_change
  before update of client_id on public.investigations
  for each row execute function private.tg__forbid_client_id_change();

revoke all on table public.investigations from public, anon, authenticated, service_role;
grant select on table public.investigations to authenticated;
grant insert (client_id, session_id, query, data_source, filters, anomaly_types)
  on table public.investigations to authenticated;
grant update (session_id, query, data_source, filters, anomaly_types, status)
  on table public.investigations to authenticated;
grant delete on table public.investigations to authenticated;
grant select, insert, update, delete on table public.investigations to service_role;

-- >>> sql/policies/investigations.sql.j2 table=investigations
/* why: seed 001's rule: an investigation belongs to the user who created it. Its owner sees,
   creates, changes and deletes it; nobody else in the tenant does; service_role (the worker)
   bypasses RLS. The owner must also belong to the row's client, and that client must be active:
   the users of a suspended client lose access to their investigations too. */
alter table public.investigations enable row level security;
alter table public.investigations force row level security;

create policy investigations_select on public.investigations
  for select to authenticated
  using (
    user_id = (select auth.uid())
    and client_id = (select private.current_client_id('viewer'))
  );

create policy investigations_insert on public.investigations
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and client_id = (select private.current_client_id('viewer'))
  );

create policy investigations_update on public.investigations
  for update to authenticated
  using (
    user_id = (select auth.uid())
    and client_id = (select private.current_client_id('viewer'))
  )
  with check (
    user_id = (select auth.uid())
    and client_id = (select private.current_client_id('viewer'))
  );

create policy investigations_delete on public.investigations
  for delete to authenticated
  using (
    user_id = (select auth.uid())
    and client_id = (select private.current_client_id('viewer'))
  );
-- <<< sql/policies/investigations.sql.j2 table=investigations

alter publication supabase_realtime add table public.investigations;

notify pgrst, 'reload schema';
