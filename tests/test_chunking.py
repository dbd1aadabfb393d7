"""renum_db.chunking: invariants over many generated texts, boundary preference, Portuguese."""

from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from renum_db.chunking import MIN_CHUNK_SIZE, Chunk, chunk_text
from renum_db.errors import InvalidInput

WORDS_PT = (
    "ação", "coração", "órgão", "pão", "João", "análise", "é", "às", "três", "você", "também",
    "número", "médico", "público", "informação", "câmara", "português", "língua", "jurídico",
    "contrato", "cláusula", "vigência", "rescisão", "prazo", "multa", "empresa", "serviço",
    "prestação", "pagamento", "além", "após", "até", "já", "só",
)  # fmt: skip
WORDS_EN = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "data", "agent", "platform",
)  # fmt: skip
ENDS = (".", ".", ".", "!", "?", "…", '."', ".”", "?)")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS_PT + WORDS_EN) for _ in range(rng.randint(1, 25))]
    if rng.random() < 0.1:
        words.insert(0, rng.choice(["Sr.", "Dra.", "Prof.", "J."]))
    if rng.random() < 0.05:
        words.append("x" * rng.randint(30, 400))  # an unbreakable token
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(ENDS)


def _paragraph(rng: random.Random) -> str:
    sep = rng.choice([" ", " ", " ", "\n", "  "])
    return sep.join(_sentence(rng) for _ in range(rng.randint(1, 12)))


def _text(rng: random.Random) -> str:
    paragraphs = [_paragraph(rng) for _ in range(rng.randint(0, 15))]
    sep = rng.choice(["\n\n", "\n\n", "\n \n", "\r\n\r\n", "\n\n\n"])
    text = sep.join(paragraphs)
    if rng.random() < 0.2:
        text = unicodedata.normalize("NFD", text)  # accents as combining marks
    if rng.random() < 0.2:
        text = "  \n" + text + "\n\t "
    return text


def _check_invariants(text: str, chunks: list[Chunk], chunk_size: int, overlap: int) -> None:
    covered = [False] * len(text)
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.content == text[c.start : c.end]
        assert c.content
        assert c.content == c.content.strip(), "no leading or trailing whitespace"
        assert len(c.content) <= chunk_size
        for j in range(c.start, c.end):
            covered[j] = True
    for j, ch in enumerate(text):
        assert covered[j] or ch.isspace(), f"character {j} ({ch!r}) is in no chunk"
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.start < nxt.start
        assert prev.end < nxt.end
        if overlap == 0:
            assert nxt.start >= prev.end
        elif nxt.start > prev.end:
            # only across a run of whitespace longer than a window
            assert not text[prev.end : nxt.start].strip()


@pytest.mark.parametrize(("chunk_size", "overlap"), [(1000, 200), (300, 60), (120, 0), (50, 49)])
def test_invariants_over_generated_texts(chunk_size: int, overlap: int) -> None:
    rng = random.Random(20240601 + chunk_size + overlap)
    for _ in range(150):
        text = _text(rng)
        chunks = chunk_text(text, chunk_size=chunk_size, overlap=overlap)
        _check_invariants(text, chunks, chunk_size, overlap)
        assert chunks == chunk_text(text, chunk_size=chunk_size, overlap=overlap)
        if not text.strip():
            assert chunks == []


def test_invariants_over_random_characters() -> None:
    """Adversarial input: random mixes of letters, punctuation, whitespace, combining marks."""
    rng = random.Random(7)
    alphabet = "ab cá\u0301.!?…\n\t  \n\n\"')x"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3000)))
        for chunk_size, overlap in ((50, 10), (80, 79), (200, 0), (333, 100)):
            chunks = chunk_text(text, chunk_size=chunk_size, overlap=overlap)
            _check_invariants(text, chunks, chunk_size, overlap)


def test_overlap_is_about_the_requested_size() -> None:
    rng = random.Random(11)
    chunk_size, overlap = 600, 120
    measured = []
    for _ in range(100):
        text = "\n\n".join(
            " ".join(_plain_sentence(rng) for _ in range(rng.randint(3, 10))) for _ in range(8)
        )
        chunks = chunk_text(text, chunk_size=chunk_size, overlap=overlap)
        for prev, nxt in itertools.pairwise(chunks):
            shared = prev.end - nxt.start
            # a sentence start within -overlap/4..+overlap/2 of the target, else a word start
            assert overlap // 2 - 20 <= shared <= overlap + overlap // 4, shared
            assert text[nxt.start - 1].isspace(), "the overlap starts at a word boundary"
            measured.append(shared)
    assert measured
    assert abs(sum(measured) / len(measured) - overlap) < overlap / 3


def _plain_sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS_PT) for _ in range(rng.randint(4, 18))]
    return " ".join(words).capitalize() + "."


def test_overlap_prefers_sentence_starts() -> None:
    sentences = [f"Frase número {i} fala de ação e coração." for i in range(60)]
    text = " ".join(sentences)
    chunks = chunk_text(text, chunk_size=400, overlap=100)
    assert len(chunks) > 3
    for c in chunks:
        assert c.content.startswith("Frase número")
        assert c.content.endswith("coração.")


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  Olá, mundo!  \n") == [Chunk(0, "Olá, mundo!", 2, 13)]
    assert chunk_text("") == []
    assert chunk_text(" \n\t\n ") == []


def test_paragraph_breaks_are_preferred() -> None:
    para = "Esta é uma frase curta. " * 10  # 240 characters, many sentence ends
    text = "\n\n".join(para.strip() for _ in range(6))
    chunks = chunk_text(text, chunk_size=600, overlap=0)
    for c in chunks[:-1]:
        assert text[c.end : c.end + 2] == "\n\n", "every chunk but the last ends a paragraph"


def test_sentence_ends_beat_whitespace() -> None:
    text = " ".join(["Palavra após palavra sem fim definido até aqui."] * 40)
    chunks = chunk_text(text, chunk_size=200, overlap=0)
    assert len(chunks) > 5
    for c in chunks:
        assert c.content.endswith("aqui."), c.content


def test_portuguese_punctuation_and_abbreviations() -> None:
    text = (
        "O Sr. Silva e a Dra. Souza assinaram o contrato às três horas. "
        "Você já leu a cláusula de rescisão? Sim! Ela prevê multa… "
        "Depois, o Prof. J. Almeida pediu mais informação. "
    ) * 12
    chunks = chunk_text(text, chunk_size=150, overlap=0)
    for c in chunks:
        assert not c.content.endswith(("Sr.", "Dra.", "Prof.", "J.")), c.content
        assert c.content.endswith((".", "?", "!", "…")), c.content


def test_exclamation_question_and_ellipsis_end_sentences() -> None:
    text = "Será que funciona? Funciona! E agora… continua. " * 30
    chunks = chunk_text(text, chunk_size=70, overlap=0)
    ends = {c.content[-1] for c in chunks}
    assert ends <= {"?", "!", "…", "."}
    assert len(ends) > 1


def test_whitespace_then_hard_cut() -> None:
    words = " ".join(["palavra"] * 50)
    chunks = chunk_text(words, chunk_size=100, overlap=0)
    assert all(c.content.endswith("palavra") for c in chunks)

    blob = "á" * 250
    chunks = chunk_text(blob, chunk_size=100, overlap=0)
    assert [len(c.content) for c in chunks] == [100, 100, 50]


def test_hard_cut_keeps_combining_accents_with_their_letter() -> None:
    blob = unicodedata.normalize("NFD", "ação" * 100)  # no whitespace at all
    chunks = chunk_text(blob, chunk_size=99, overlap=20)
    for c in chunks:
        assert not unicodedata.combining(c.content[0])
    _check_invariants(blob, chunks, 99, 20)


def test_long_whitespace_gap_is_skipped() -> None:
    text = "Início do texto." + " " * 500 + "Fim do texto."
    chunks = chunk_text(text, chunk_size=100, overlap=50)
    assert [c.content for c in chunks] == ["Início do texto.", "Fim do texto."]


def test_validation() -> None:
    with pytest.raises(InvalidInput, match="chunk_size"):
        chunk_text("x", chunk_size=MIN_CHUNK_SIZE - 1, overlap=0)
    with pytest.raises(InvalidInput, match="overlap"):
        chunk_text("x", chunk_size=100, overlap=100)
    with pytest.raises(InvalidInput, match="overlap"):
        chunk_text("x", chunk_size=100, overlap=-1)
    with pytest.raises(InvalidInput, match="integer"):
        chunk_text("x", chunk_size=True, overlap=0)
    with pytest.raises(InvalidInput, match="str"):
        chunk_text(b"x", chunk_size=100, overlap=0)  # type: ignore[arg-type]
