-- 0003 rollback: drop the agent tables (their policies, triggers and indexes go with them).
set local lock_timeout = '10s';
set local statement_timeout = '5min';
drop table if exists public.api_credentials;
drop table if exists public.agent_executions;
drop table if exists public.agents;
