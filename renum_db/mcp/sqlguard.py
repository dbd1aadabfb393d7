"""Layer 1 of the MCP `query` tool: what the agent wrote, checked by PostgreSQL's own parser.

`check_query(text)` parses with pglast (libpg_query, the real PostgreSQL grammar) and accepts only
one plain `SELECT` (or `VALUES` / `TABLE`), refusing with `QueryRefused` and a reason the agent
can act on:

- anything that is not exactly one statement, or not a SELECT (`explain`, `copy`, `set`,
  `reset`, `do`, `call`, DDL, DML, transaction control, ...);
- `SELECT ... INTO`, locking clauses (`for update/share`) and data-modifying CTEs anywhere;
- a function that is not on the allowlist (`set_config`, `current_setting`, `pg_sleep`,
  `pg_read_file`, `lo_*`, `dblink`, `pg_terminate_backend`, `nextval`, `query_to_xml`, ...);
  a function name qualified with a schema other than pg_catalog (or `extensions` for pgvector
  distances, `auth.uid`);
- relations outside schema `public` (system catalogs, `information_schema`, `auth`, `private`,
  `storage`), XML expressions, parameters (`$1`), and the column `encrypted_value`.

What is run is the statement deparsed from the checked tree (comments and formatting gone), so
the server executes exactly what was checked. The later layers (a read-only transaction with
timeouts and caps, and a login role that can only become `authenticated`) do not trust this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

__all__ = ["ALLOWED_FUNCTIONS", "MAX_QUERY_LENGTH", "CheckedQuery", "QueryRefused", "check_query"]

MAX_QUERY_LENGTH: Final = 20_000

# Pure, side-effect-free functions: aggregates, window functions, text, numbers, dates, JSON,
# arrays and full text search. Nothing that reads settings, files, other sessions or the
# catalog, sleeps, writes, or reaches outside the database.
ALLOWED_FUNCTIONS: Final = frozenset(
    [
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "string_agg",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "jsonb_object_agg",
        "bool_and",
        "bool_or",
        "every",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "corr",
        "covar_pop",
        "covar_samp",
        "regr_slope",
        "regr_intercept",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "bit_and",
        "bit_or",
        "row_number",
        "rank",
        "dense_rank",
        "percent_rank",
        "cume_dist",
        "ntile",
        "lag",
        "lead",
        "first_value",
        "last_value",
        "nth_value",
        "lower",
        "upper",
        "length",
        "char_length",
        "character_length",
        "octet_length",
        "bit_length",
        "substring",
        "substr",
        "left",
        "right",
        "btrim",
        "ltrim",
        "rtrim",
        "replace",
        "concat",
        "concat_ws",
        "position",
        "strpos",
        "split_part",
        "starts_with",
        "initcap",
        "lpad",
        "rpad",
        "repeat",
        "reverse",
        "format",
        "md5",
        "translate",
        "ascii",
        "chr",
        "regexp_replace",
        "regexp_match",
        "regexp_matches",
        "regexp_like",
        "regexp_count",
        "regexp_instr",
        "regexp_substr",
        "regexp_split_to_array",
        "regexp_split_to_table",
        "string_to_array",
        "string_to_table",
        "array_to_string",
        "quote_ident",
        "quote_literal",
        "quote_nullable",
        "to_hex",
        "normalize",
        "is_normalized",
        "overlay",
        "unistr",
        "casefold",
        "similar_to_escape",
        "like_escape",
        "pg_collation_for",
        "abs",
        "ceil",
        "ceiling",
        "floor",
        "round",
        "trunc",
        "sqrt",
        "cbrt",
        "power",
        "pow",
        "exp",
        "ln",
        "log",
        "log10",
        "mod",
        "sign",
        "div",
        "pi",
        "degrees",
        "radians",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "width_bucket",
        "gcd",
        "lcm",
        "factorial",
        "scale",
        "min_scale",
        "trim_scale",
        "random",
        "now",
        "current_timestamp",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "date_trunc",
        "date_part",
        "extract",
        "age",
        "make_date",
        "make_time",
        "make_timestamp",
        "make_timestamptz",
        "make_interval",
        "justify_days",
        "justify_hours",
        "justify_interval",
        "to_char",
        "to_date",
        "to_number",
        "to_timestamp",
        "date_bin",
        "isfinite",
        "timezone",
        "overlaps",
        "to_json",
        "to_jsonb",
        "row_to_json",
        "array_to_json",
        "json_build_object",
        "jsonb_build_object",
        "json_build_array",
        "jsonb_build_array",
        "json_object",
        "jsonb_object",
        "json_array_length",
        "jsonb_array_length",
        "json_array_elements",
        "jsonb_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements_text",
        "json_each",
        "jsonb_each",
        "json_each_text",
        "jsonb_each_text",
        "json_object_keys",
        "jsonb_object_keys",
        "json_extract_path",
        "jsonb_extract_path",
        "json_extract_path_text",
        "jsonb_extract_path_text",
        "json_typeof",
        "jsonb_typeof",
        "jsonb_path_query",
        "jsonb_path_query_array",
        "jsonb_path_query_first",
        "jsonb_path_exists",
        "jsonb_path_match",
        "jsonb_pretty",
        "jsonb_strip_nulls",
        "json_strip_nulls",
        "jsonb_set",
        "jsonb_insert",
        "jsonb_concat",
        "array_length",
        "cardinality",
        "unnest",
        "array_position",
        "array_positions",
        "array_remove",
        "array_replace",
        "array_append",
        "array_prepend",
        "array_cat",
        "array_upper",
        "array_lower",
        "array_dims",
        "array_ndims",
        "array_fill",
        "array_reverse",
        "array_sort",
        "generate_series",
        "generate_subscripts",
        "to_tsvector",
        "to_tsquery",
        "plainto_tsquery",
        "phraseto_tsquery",
        "websearch_to_tsquery",
        "ts_rank",
        "ts_rank_cd",
        "ts_headline",
        "numnode",
        "querytree",
        "setweight",
        "strip",
        "tsvector_to_array",
        "gen_random_uuid",
        "uuidv4",
        "uuid_extract_timestamp",
        "uuid_extract_version",
        "pg_typeof",
        "num_nulls",
        "num_nonnulls",
    ]
)

# Qualified names allowed besides pg_catalog.<allowed>.
_QUALIFIED: Final = frozenset(
    {
        ("extensions", "cosine_distance"),
        ("extensions", "l2_distance"),
        ("extensions", "l1_distance"),
        ("extensions", "inner_product"),
        ("extensions", "vector_dims"),
        ("extensions", "vector_norm"),
        ("auth", "uid"),
    }
)
_UNQUALIFIED_EXTRA: Final = frozenset(
    {"cosine_distance", "l2_distance", "l1_distance", "inner_product", "vector_dims", "vector_norm"}
)
_OPERATOR_SCHEMAS: Final = frozenset({"pg_catalog", "extensions"})
_FORBIDDEN_COLUMNS: Final = frozenset({"encrypted_value"})
_WRITES: Final = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


_KINDS: Final = {
    "VariableSet": "SET / RESET",
    "VariableShow": "SHOW",
    "Transaction": "transaction control",
    "Do": "DO",
    "Call": "CALL",
    "Explain": "EXPLAIN",
    "Copy": "COPY",
}


class QueryRefused(Exception):
    """The statement is not one the MCP server runs; the message says why."""


@dataclass(frozen=True, slots=True)
class CheckedQuery:
    """A statement that passed layer 1: `sql` is the deparsed text that will run."""

    original: str
    sql: str


def _names(nodes: Any) -> list[str]:
    return [str(n.sval) for n in nodes or () if isinstance(n, ast.String)]


class _Checker(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.relations: list[tuple[str | None, str]] = []
        self.cte_names: set[str] = set()

    def visit(self, ancestors: Any, node: Any) -> None:
        problem = self._problem(node)
        if problem and problem not in self.problems:
            self.problems.append(problem)

    def _problem(self, node: Any) -> str | None:
        if isinstance(node, _WRITES):
            return "data-modifying statements (INSERT, UPDATE, DELETE, MERGE) are not allowed"
        if isinstance(node, ast.IntoClause):
            return "SELECT ... INTO is not allowed"
        if isinstance(node, ast.LockingClause):
            return "locking clauses (FOR UPDATE / FOR SHARE ...) are not allowed"
        if isinstance(node, ast.ParamRef):
            return "parameters ($1, ...) are not supported: write the values into the query"
        if isinstance(node, ast.XmlExpr | ast.XmlSerialize):
            return "XML functions are not allowed"
        if isinstance(node, ast.CommonTableExpr):
            self.cte_names.add(str(node.ctename))
            return None
        if isinstance(node, ast.RangeVar):
            if node.catalogname:
                return (
                    f"relation {node.catalogname}.{node.schemaname}.{node.relname} is not allowed"
                )
            self.relations.append((node.schemaname, str(node.relname)))
            return None
        if isinstance(node, ast.FuncCall):
            return _function_problem(_names(node.funcname))
        if isinstance(node, ast.ColumnRef):
            fields = _names(node.fields)
            if _FORBIDDEN_COLUMNS & set(fields):
                return "column encrypted_value is never readable"
            return None
        if isinstance(node, ast.A_Expr):
            names = _names(node.name)
            if len(names) > 1 and names[0] not in _OPERATOR_SCHEMAS:
                return f"operator {'.'.join(names)} is not allowed"
        return None


def _function_problem(names: list[str]) -> str | None:
    if not names:
        return "this function call is not allowed"
    shown = ".".join(names)
    if len(names) == 1:
        name = names[0]
        if name in ALLOWED_FUNCTIONS or name in _UNQUALIFIED_EXTRA:
            return None
    elif len(names) == 2:
        schema, name = names
        if (schema == "pg_catalog" and name in ALLOWED_FUNCTIONS) or (schema, name) in _QUALIFIED:
            return None
    return f"function {shown}() is not allowed (only pure functions on the server's allowlist)"


def _relation_problems(checker: _Checker) -> list[str]:
    problems = []
    for schema, name in checker.relations:
        if schema is None:
            if name in checker.cte_names or not name.startswith("pg_"):
                continue
            problems.append(
                f"relation {name} is not allowed: system catalogs are not available"
                " (use the list_tables and list_columns tools)"
            )
        elif schema != "public":
            problems.append(
                f"relation {schema}.{name} is not allowed: only tables and views in schema public"
                " can be queried"
            )
    return problems


def check_query(text: str) -> CheckedQuery:
    """Accept `text` if it is exactly one read-only SELECT within the rules above; raise
    QueryRefused otherwise. Returns the statement to run (deparsed from the checked tree)."""
    if not isinstance(text, str) or not text.strip():
        raise QueryRefused("the query is empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryRefused(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    if "\x00" in text:
        raise QueryRefused("the query contains a NUL character")
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        raise QueryRefused(f"not valid SQL: {exc.args[0] if exc.args else exc}") from None
    if len(statements) != 1:
        raise QueryRefused(
            f"exactly one statement is allowed, got {len(statements)}"
            if statements
            else "the query has no statement"
        )
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        kind = type(stmt).__name__.removesuffix("Stmt")
        kind = _KINDS.get(kind, kind.upper())
        raise QueryRefused(f"only SELECT statements are allowed, not {kind}")
    checker = _Checker()
    checker(statements)
    problems = checker.problems + _relation_problems(checker)
    if problems:
        raise QueryRefused("; ".join(problems))
    try:
        deparsed = str(RawStream()(stmt))
    except Exception:
        raise QueryRefused("the query uses syntax this server cannot check") from None
    return CheckedQuery(original=text, sql=deparsed)
