"""Keep `sql/functions` and `sql/policies` the reviewed source of truth for what migrations run.

yoyo cannot include files and never re-runs an applied migration, so each migration embeds a
versioned copy of the objects it (re)defines, Sqitch-`rework` style, between marker lines:

    -- >>> sql/functions/private.current_client_id.sql
    ...exact file content...
    -- <<< sql/functions/private.current_client_id.sql

    -- >>> sql/policies/tenant_table.sql.j2 table=documents select=viewer insert=member ...
    ...the template rendered with those parameters...
    -- <<< sql/policies/tenant_table.sql.j2 table=documents select=viewer insert=member ...

`sync` fills the blocks of a migration you are writing (never a rollback: a rollback embeds the
*previous* version); `check` proves that, for every source (file plus parameters), the *latest*
migration embedding it matches the file exactly, that every file under sql/functions and
sql/policies is embedded somewhere, and that each block of a rollback equals the copy of that
source in the last forward migration *before* the rolled-back one (what the database ran then).
A migration that drops an object for good retires its source with a line
`-- retired: sql/functions/<file>`: the file is deleted, and `check` then requires it to stay
deleted (unless a later migration embeds it again). Older migrations keep the copy they were
applied with (history is immutable); changing a function means adding a migration that embeds the
new version, with a rollback that embeds the old one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import jinja2

__all__ = ["Block", "check", "parse_blocks", "render", "sync_file"]

_OPEN = re.compile(r"^-- >>> (?P<spec>\S.*?)\s*$")
_CLOSE = re.compile(r"^-- <<< (?P<spec>\S.*?)\s*$")
_RETIRED = re.compile(r"^-- retired: (?P<source>\S+)\s*$", re.MULTILINE)
SOURCE_DIRS = ("sql/functions", "sql/policies")


@dataclass(frozen=True, slots=True)
class Block:
    spec: str
    source: str
    params: tuple[tuple[str, str], ...]
    body: str
    start: int  # line index of the opening marker
    end: int  # line index of the closing marker


def _parse_spec(spec: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    parts = shlex.split(spec)
    source, params = parts[0], []
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"bad parameter {part!r} in include marker {spec!r}")
        params.append((key, value))
    return source, tuple(params)


def parse_blocks(text: str, *, where: str = "<text>") -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            if _CLOSE.match(lines[i]):
                raise ValueError(f"{where}:{i + 1}: closing marker without an opening one")
            i += 1
            continue
        spec = m.group("spec")
        for j in range(i + 1, len(lines)):
            if _OPEN.match(lines[j]):
                raise ValueError(f"{where}:{j + 1}: nested include marker inside {spec!r}")
            c = _CLOSE.match(lines[j])
            if c:
                if c.group("spec") != spec:
                    raise ValueError(f"{where}:{j + 1}: marker {c.group('spec')!r} closes {spec!r}")
                source, params = _parse_spec(spec)
                body = "\n".join(lines[i + 1 : j])
                blocks.append(Block(spec, source, params, body, i, j))
                i = j + 1
                break
        else:
            raise ValueError(f"{where}:{i + 1}: include marker {spec!r} is never closed")
    return blocks


def render(root: Path, source: str, params: tuple[tuple[str, str], ...]) -> str:
    """The text a block must contain: the file itself, or the jinja2 template rendered."""
    path = (root / source).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise FileNotFoundError(f"include source {source!r} does not exist under {root}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".j2":
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # noqa: S701 - renders SQL identifiers, never HTML
        )
        text = env.from_string(text).render(**dict(params))
    elif params:
        raise ValueError(f"{source}: parameters are only allowed for .j2 templates")
    return text.rstrip("\n")


def sync_file(root: Path, migration: Path) -> bool:
    """Rewrite every block of `migration` with the current source; return whether it changed.
    Refuses rollback files: they embed the previous version, which `check` verifies."""
    if migration.name.endswith(".rollback.sql"):
        raise ValueError(
            f"{migration}: sql sync never writes a rollback; paste the previous version from the "
            "last earlier migration that embeds the source (`renum-db sql check` verifies it)"
        )
    text = migration.read_text(encoding="utf-8")
    blocks = parse_blocks(text, where=str(migration))
    lines = text.split("\n")
    for block in reversed(blocks):
        body = render(root, block.source, block.params).split("\n")
        lines[block.start + 1 : block.end] = body
    new = "\n".join(lines)
    if new != text:
        migration.write_text(new, encoding="utf-8")
        return True
    return False


def check(root: Path, migrations_dir: Path | None = None) -> list[str]:
    """Return problems; empty means migrations and sql/ sources agree."""
    migrations_dir = migrations_dir or root / "migrations"
    problems: list[str] = []
    latest: dict[str, tuple[Path, Block]] = {}
    used_sources: set[str] = set()
    retired: dict[str, Path] = {}
    for path in sorted(migrations_dir.glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        text = path.read_text(encoding="utf-8")
        try:
            blocks = parse_blocks(text, where=str(path))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        for match in _RETIRED.finditer(text):
            source = match.group("source")
            retired[source] = path
            used_sources.discard(source)
            for spec in [s for s, (_, b) in latest.items() if b.source == source]:
                del latest[spec]
        for block in blocks:
            latest[block.spec] = (path, block)
            used_sources.add(block.source)
            retired.pop(block.source, None)
    for source, path in sorted(retired.items()):
        if (root / source).exists():
            problems.append(f"{source} is retired by {path.name} but still exists")
    for spec, (path, block) in sorted(latest.items()):
        try:
            expected = render(root, block.source, block.params)
        except (FileNotFoundError, ValueError, jinja2.TemplateError) as exc:
            problems.append(f"{path.name}: {spec}: {exc}")
            continue
        if block.body != expected:
            problems.append(
                f"{path.name}: embedded copy of {spec} differs from the source; add a migration "
                "that embeds the new version (or run `renum-db sql sync` on an unapplied one)"
            )
    problems.extend(_check_rollbacks(migrations_dir))
    for folder in SOURCE_DIRS:
        for source in sorted((root / folder).glob("*.sql*")):
            rel = source.relative_to(root).as_posix()
            if rel not in used_sources and rel not in retired:
                problems.append(f"{rel} is not embedded in any migration")
    return problems


def _check_rollbacks(migrations_dir: Path) -> list[str]:
    """Each block of NNNN.x.rollback.sql must equal the copy of its spec in the last forward
    migration sorted before NNNN.x: rolling back restores what the database ran before."""
    problems: list[str] = []
    previous: dict[str, Block] = {}
    for path in sorted(migrations_dir.glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        rollback = path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")
        if rollback.is_file():
            try:
                blocks = parse_blocks(rollback.read_text(encoding="utf-8"), where=str(rollback))
            except ValueError as exc:
                problems.append(str(exc))
                blocks = []
            for block in blocks:
                before = previous.get(block.spec)
                if before is None:
                    problems.append(
                        f"{rollback.name}: embeds {block.spec}, which no earlier migration "
                        "embeds (a rollback restores a previous version; drop the object instead)"
                    )
                elif block.body != before.body:
                    problems.append(
                        f"{rollback.name}: embedded copy of {block.spec} differs from the previous "
                        "version (the copy in the last earlier migration that embeds it)"
                    )
        try:
            forward = parse_blocks(path.read_text(encoding="utf-8"), where=str(path))
        except ValueError:
            continue  # reported by check()
        previous.update({block.spec: block for block in forward})
    return problems
