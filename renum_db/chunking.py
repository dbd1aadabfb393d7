"""Split text into overlapping chunks for embedding, on the most natural boundary available.

Sizes are in characters (Python code points). Each chunk ends, in order of preference, at a
paragraph break (a blank line), a sentence end (`.`, `!`, `?`, `…`, possibly followed by closing
quotes or brackets, then whitespace; common Portuguese and English abbreviations such as "Sr." or
"Dr." and single-letter initials are not sentence ends), a line break, any whitespace, or, when a
window holds none of these, a hard cut (never between a letter and its combining accent). Breaks
in the first half of a window are only used when nothing better exists later in it, so chunks do
not come out tiny.

Consecutive chunks overlap by about `overlap` characters: the next chunk starts at a sentence
start near `end - overlap` (within -overlap/4 .. +overlap/2 of it), else at the first word start
at or after it, else at a hard position.

Guarantees (checked by tests/test_chunking.py over many generated texts):

- `chunk.content == text[chunk.start:chunk.end]`, non-empty, with no leading or trailing
  whitespace, and at most `chunk_size` characters;
- starts and ends strictly increase; every non-whitespace character lies in some chunk, and what
  lies outside every chunk (before the first, after the last, between two chunks when `overlap`
  is 0) is whitespace only; a text of whitespace only yields no chunks;
- the result depends only on the arguments (deterministic).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from renum_db.errors import InvalidInput

__all__ = ["MIN_CHUNK_SIZE", "Chunk", "chunk_text", "validate_chunking"]

MIN_CHUNK_SIZE: Final = 50
"""The smallest chunk_size accepted: below it a chunk rarely holds a whole sentence."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its position in the document and its text, `text[start:end]`."""

    index: int
    content: str
    start: int
    end: int


# A blank line (possibly holding spaces or tabs) separates paragraphs.
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
# Sentence-ending punctuation, optional closing quotes/brackets, then whitespace.
_SENTENCE = re.compile(r"(?<=\S)[.!?…]+[\"'\u201d\u2019»)\]]*(?=\s)")
_LINE = re.compile(r"\n")
_SPACE = re.compile(r"\s+")
_WORD_BEFORE = re.compile(r"(\w+)$")
_WORD_START = re.compile(r"(?<=\s)\S")

# Lower-cased words whose trailing period does not end a sentence.
_ABBREVIATIONS: Final = frozenset(
    {
        "sr", "sra", "srs", "sras", "srta", "dr", "dra", "drs", "dras", "prof", "profa",
        "profs", "eng", "arq", "adv", "av", "pe", "sto", "sta", "exmo", "exma", "ilmo",
        "ilma", "vs", "pp", "pág", "pag", "art", "arts", "cap", "fig", "vol", "ed", "nº",
        "núm", "num", "tel", "obs", "ex", "mr", "mrs", "ms", "st", "jr", "inc", "approx",
    }
)  # fmt: skip


def validate_chunking(chunk_size: int, overlap: int) -> None:
    """Raise InvalidInput unless MIN_CHUNK_SIZE <= chunk_size and 0 <= overlap < chunk_size."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise InvalidInput(f"chunk_size must be an integer, got {chunk_size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int):
        raise InvalidInput(f"overlap must be an integer, got {overlap!r}")
    if chunk_size < MIN_CHUNK_SIZE:
        raise InvalidInput(f"chunk_size must be at least {MIN_CHUNK_SIZE}, got {chunk_size}")
    if not 0 <= overlap < chunk_size:
        raise InvalidInput(
            f"overlap must be between 0 and chunk_size - 1 ({chunk_size - 1}), got {overlap}"
        )


def chunk_text(text: str, *, chunk_size: int = 1000, overlap: int = 200) -> list[Chunk]:
    """Split `text` into chunks of at most `chunk_size` characters overlapping by ~`overlap`."""
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a str, got {type(text).__name__}")
    validate_chunking(chunk_size, overlap)
    return list(_chunks(text, chunk_size, overlap))


def _chunks(text: str, chunk_size: int, overlap: int) -> Iterator[Chunk]:
    n = len(text)
    last = _rstrip(text, n, 0)  # end of the last non-whitespace character
    pos = _lstrip(text, 0, n)
    prev_end = pos  # nothing before pos is new content for the next window
    index = 0
    while pos < last:
        limit = pos + chunk_size
        if last <= limit:
            yield Chunk(index, text[pos:last], pos, last)
            return
        if _lstrip(text, prev_end, n) >= limit:
            # Only whitespace after the previous chunk within reach: no overlap across the gap.
            pos = prev_end = _lstrip(text, prev_end, n)
            continue
        # A break must add new content and should not come in the window's first half.
        lo = max(prev_end, pos + chunk_size // 2)
        end = _best_break(text, pos, lo, limit)
        if end is None and lo > prev_end:
            end = _best_break(text, pos, prev_end, limit)
        if end is None:
            end = _hard_cut(text, max(pos, prev_end), limit)
        yield Chunk(index, text[pos:end], pos, end)
        index += 1
        if overlap == 0:
            nxt = _lstrip(text, end, n)
        else:
            nxt = _overlap_start(text, pos, end, overlap, chunk_size)
        pos, prev_end = _lstrip(text, nxt, n), end


def _lstrip(text: str, i: int, n: int) -> int:
    while i < n and text[i].isspace():
        i += 1
    return i


def _rstrip(text: str, i: int, floor: int) -> int:
    while i > floor and text[i - 1].isspace():
        i -= 1
    return i


def _is_sentence_end(text: str, match: re.Match[str]) -> bool:
    if match.group() != ".":
        return True  # ! ? … or a period followed by a closing quote or bracket
    word = _WORD_BEFORE.search(text, max(0, match.start() - 20), match.start())
    if word is None:
        return True
    token = word.group(1)
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. Silva", "p. 12"
    return token.lower() not in _ABBREVIATIONS


def _candidates(text: str, pattern: re.Pattern[str], pos: int, limit: int) -> Iterator[int]:
    """Chunk ends (after stripping trailing whitespace) at matches of `pattern` in the window."""
    endpos = min(len(text), limit + 1)  # one character of lookahead past the window
    for match in pattern.finditer(text, pos, endpos):
        if pattern is _SENTENCE:
            if match.end() > limit or not _is_sentence_end(text, match):
                continue
            yield match.end()
        else:
            yield _rstrip(text, match.start(), pos)


def _best_break(text: str, pos: int, lo: int, limit: int) -> int | None:
    """The latest end in (lo, limit] at the most preferred kind of boundary, if any."""
    for pattern in (_PARAGRAPH, _SENTENCE, _LINE, _SPACE):
        best = None
        for end in _candidates(text, pattern, pos, limit):
            if lo < end <= limit:
                best = end
        if best is not None:
            return best
    return None


def _hard_cut(text: str, lo: int, limit: int) -> int:
    """`limit`, moved back so a combining mark stays with its base character when possible."""
    end = limit
    while end - 1 > lo and unicodedata.combining(text[end]):
        end -= 1
    return limit if text[end - 1].isspace() else end


def _overlap_start(text: str, pos: int, end: int, overlap: int, chunk_size: int) -> int:
    """Where the chunk after [pos, end) starts: a sentence, else word, start near end - overlap."""
    # The next start must move forward and leave the next window room for new content.
    floor = max(pos + 1, end - chunk_size + 1)
    target = max(floor, end - overlap)
    lo = max(floor, target - overlap // 4)
    hi = min(end - 1, target + overlap // 2)
    best: int | None = None
    for pattern in (_SENTENCE, _PARAGRAPH, _LINE):
        for match in pattern.finditer(text, max(pos, lo - 16), min(len(text), hi + 1)):
            if pattern is _SENTENCE and not _is_sentence_end(text, match):
                continue
            start = _lstrip(text, match.end(), end)
            if lo <= start <= hi and (best is None or abs(start - target) < abs(best - target)):
                best = start
    if best is not None:
        return best
    word = _WORD_START.search(text, target, end)
    if word is not None:
        return word.start()
    # One long word: cut inside it, keeping combining marks with their base character.
    start = target
    while start > floor and unicodedata.combining(text[start]):
        start -= 1
    return start
