-- depends: 0034.walk-the-shared-graph-as-a-second-graph
--
-- 0035 keep-chunk-texts-in-the-row
-- what: document_chunks gets toast_tuple_target = 8160 (the largest PostgreSQL allows): a
--       chunk's content, metadata and text vector stay in its row whenever the row fits in a
--       page, instead of going to the TOAST table as soon as the row passes 2 KB.
-- why: issue 12, the small tenants' fixed cost. Since 0019 the 6 KB vector stays in the row
--       (storage main), so every row passed the default 2 KB target and the toaster moved every
--       text out of line, however short: each search result then cost a TOAST index probe and
--       a TOAST heap fetch per column returned. The page holds one row either way (6.2 KB of
--       vector), so the texts fill space that was empty: the same heap size, no TOAST. Measured
--       interleaved on copies of the benchmark's 100- and 1,000-row tenants (same rows, the one
--       setting apart; docs/retrieval.md, "0035"): heap 8800 kB for both, TOAST 0 against 384 kB;
--       the exact route's statement (rank, join the winners' rows) 0.40 against 0.48 ms for 100
--       rows; ranking alone unchanged. The vector itself still moves out only if it alone is
--       too big for a page (as before: storage main is taken out last).
-- cost: none at apply time. `set (toast_tuple_target)` takes a SHARE UPDATE EXCLUSIVE lock
--       (reads and writes go on) and rewrites nothing: rows written from now on keep their texts
--       inline; older rows move when they are next written, or all at once with pg_repack or
--       `vacuum full` (docs/operations.md).

set local lock_timeout = '10s';
set local statement_timeout = '5min';

alter table public.document_chunks set (toast_tuple_target = 8160);
