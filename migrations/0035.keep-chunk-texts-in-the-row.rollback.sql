-- 0035 keep-chunk-texts-in-the-row (rollback): the default TOAST target again (rows written
-- meanwhile keep their texts inline until they are rewritten; both layouts read alike).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

alter table public.document_chunks reset (toast_tuple_target);
