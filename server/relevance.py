"""How likely a hit is to answer the query, and whether the corpus answers it at all.

A fused score ranks hits within one result but means nothing across queries (reciprocal rank fusion gives
about 0.03 to a good hit and a useless one alike). Two signals do carry meaning:

- ``similarity``: the cosine of the query's vector and the passage's stored vector (what dense search scored);
- ``coverage``: the share of the query's content words the passage holds, each word weighted by its IDF in the
  keyword index and stemmed as that index stems; a word the corpus never uses weighs most ("softball" in "Is
  there a company softball team I can join?").

Each passage's ``relevance`` is a logistic model of the two with fixed coefficients, fitted once on the
development questions (bench/relevance_fit.py on bench/questions/dev.toml; never at run time): the estimated
chance that the passage holds the answer, as measured there. A hit shows its most relevant passage's (a hit may
carry further passages of its document); ``match`` says it in a word.

The result's verdict, ``answer_in_corpus``, reads the passages of the first ``VERDICT_DEPTH`` hits together:
the similarity of the closest one plus half the share of the query's words (IDF-weighted, as above) that at least
one of them holds. A question the corpus does not answer is usually either far in meaning from every passage or
asks about something no passage names (a year, a place, a product the corpus never mentions). The second kind
often scores well on both signals ("What is the parental leave policy for the Berlin office?" is close to the
parental leave pages and holds all their words but one), so a name the query asks about that none of those
passages holds (``unmatched_names``: a capitalised word inside a sentence, or a word with a digit) drops the
verdict a step: on the development questions, out of corpus called unlikely 7 of 10 → 9 of 10.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from server.hits import Hit
from store import keyword
from store.chroma import chroma_vectors
from store.replica import Snapshot

Match = Literal["strong", "partial", "weak"]
Verdict = Literal["likely", "possible", "unlikely"]

# relevance = 1 / (1 + exp(-(BIAS + SIMILARITY_WEIGHT * similarity + COVERAGE_WEIGHT * coverage)))
BIAS = -6.78
SIMILARITY_WEIGHT = 6.19
COVERAGE_WEIGHT = 2.41
STRONG = 0.3  # a hit at or above is a "strong" match (a third of such dev hits held the answer), at or above
PARTIAL = 0.1  # PARTIAL a "partial" one (about one in six), else "weak" (about one in fifty)
VERDICT_DEPTH = 5  # the verdict reads the hits a limit-5 search returns, whatever the limit
WORDS_WEIGHT = 0.5  # evidence = closest similarity + WORDS_WEIGHT * words held by the first hits together
LIKELY = 1.0  # evidence at or above: "likely"
POSSIBLE = 0.82  # at or above: "possible"; below: "unlikely"
VERDICTS: tuple[Verdict, ...] = ("unlikely", "possible", "likely")
_TOKEN = re.compile(r"\w+|[.?!]")  # words as the keyword index splits them, and what ends a sentence
# capitalised by convention, not names: a passage's date is in its metadata, rarely in its words
CALENDAR = frozenset("january february march april may june july august september october november december "
                     "monday tuesday wednesday thursday friday saturday sunday".split())


@dataclass(frozen=True)
class Signals:
    """One passage's own: a hit shows its most relevant passage's, `corpus check` weighs each passage on its own."""

    similarity: float
    coverage: float
    relevance: float


@dataclass(frozen=True)
class Found:
    """A search's hits, each with its relevance, and the verdict on them with the two signals it reads."""

    hits: list[Hit]
    answer_in_corpus: Verdict
    closest_similarity: float  # the highest similarity among the first VERDICT_DEPTH hits
    words_held: float  # the IDF-weighted share of the query's words at least one of those hits holds
    passages: dict[str, Signals] = field(default_factory=dict)  # every passage of the hits, by id
    unmatched_names: list[str] = field(default_factory=list)  # names the query asks about that none of those hold


def relevance(similarity: float, coverage: float) -> float:
    """The fixed model: rises with both signals, between 0 and 1."""
    return 1.0 / (1.0 + math.exp(-(BIAS + SIMILARITY_WEIGHT * similarity + COVERAGE_WEIGHT * coverage)))


def match(value: float) -> Match:
    return "strong" if value >= STRONG else "partial" if value >= PARTIAL else "weak"


def verdict(closest_similarity: float, words_held: float, name_unmatched: bool = False) -> Verdict:
    """Whether the corpus answers the query, from the first hits' two signals; rises with each, and is a step
    lower when a name the query asks about is in none of them."""
    evidence = closest_similarity + WORDS_WEIGHT * words_held
    step = 2 if evidence >= LIKELY else 1 if evidence >= POSSIBLE else 0
    return VERDICTS[max(step - name_unmatched, 0)]


def verdict_basis(closest_similarity: float, words_held: float, unmatched_names: Sequence[str]) -> str:
    """What the verdict read, in words (`corpus search` and the MCP tool print it beside the verdict)."""
    missing = f"; no first hit names {', '.join(unmatched_names)}" if unmatched_names else ""
    return f"closest similarity {closest_similarity:.2f}, {words_held:.0%} of the query's key words held{missing}"


def names(query: str) -> dict[str, str]:
    """The query's names as the keyword index spells its words (lowercased), each with the query's spelling: a
    word that is capitalised inside a sentence (Berlin, Kubernetes, PSResourceGet) or holds a digit (2027, v3).
    A sentence's first word, "I", months and weekdays are no names; nor is any capitalised word of a query
    written without lowercase words inside its sentences (in capitals or title case, capitals say nothing)."""
    capitalised: dict[str, str] = {}
    numbered: dict[str, str] = {}
    lowercase = False
    opening = True
    for token in _TOKEN.findall(query):
        if token in ".?!":
            opening = True
            continue
        word = token.lower()
        if any(ch.isdigit() for ch in token):
            numbered.setdefault(word, token)
        elif not opening and token[0].islower():
            lowercase = True
        elif not opening and token[0].isupper() and token != "I" and word not in CALENDAR:
            capitalised.setdefault(word, token)
        opening = False
    return {**capitalised, **numbered} if lowercase else numbered


def judged(snapshot: Snapshot, query: str, terms: Sequence[keyword.QueryTerm], vector: np.ndarray | None,
           hits: list[Hit]) -> Found:
    """The hits with their signals, relevance and match filled in, and the verdict on the first of them;
    ``terms`` and ``vector`` are the query's (``vector`` None only without hits)."""
    if not hits or vector is None:
        return Found(hits, "unlikely", 0.0, 0.0)
    owner = [n for n, hit in enumerate(hits) for _ in range(1 + len(hit.more))]  # each passage's hit
    ids = [chunk_id for hit in hits for chunk_id in (hit.id, *(p.id for p in hit.more))]
    rowids, stored = _rows(snapshot, ids)
    # both sides are unit vectors (the embedder normalises), so the dot product is the cosine; einsum, not `@`,
    # starts no BLAS threads (see store.vectors.most_similar)
    similarities = np.einsum("ij,j->i", stored, np.asarray(vector, dtype=np.float32))
    weights, held = words(terms, rowids)
    total = float(weights.sum()) or 1.0
    coverages = weights @ held / total
    values = [relevance(similarity, covered) for similarity, covered in zip(similarities.tolist(), coverages.tolist(),
                                                                             strict=True)]
    best: dict[int, int] = {}  # hit -> its most relevant passage
    for i, n in enumerate(owner):
        if n not in best or values[i] > values[best[n]]:
            best[n] = i
    signals = [Signals(round(float(similarity), 3), round(float(covered), 3), round(value, 3))
               for similarity, covered, value in zip(similarities.tolist(), coverages.tolist(), values, strict=True)]
    scored = [replace(hit, similarity=signals[i].similarity, coverage=signals[i].coverage,
                      relevance=signals[i].relevance, match=match(values[i]))
              for hit, i in zip(hits, (best[n] for n in range(len(hits))), strict=True)]
    first = [i for i, n in enumerate(owner) if n < VERDICT_DEPTH]
    closest = float(similarities[first].max())
    somewhere = held[:, first].any(axis=1)
    together = float(weights @ somewhere) / total
    named = names(query)
    unmatched = [named[term.word] for term, holds in zip(terms, somewhere.tolist(), strict=True)
                 if term.word in named and not holds]
    return Found(scored, verdict(closest, together, bool(unmatched)), round(closest, 3), round(together, 3),
                 dict(zip(ids, signals, strict=True)), unmatched)


def words(terms: Sequence[keyword.QueryTerm], rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The query's terms' IDF weights, and which of the rows hold each (terms × rows)."""
    held = np.zeros((len(terms), len(rowids)), dtype=bool)
    for i, term in enumerate(terms):
        if len(term.rowids):
            at = np.minimum(np.searchsorted(term.rowids, rowids), len(term.rowids) - 1)
            held[i] = term.rowids[at] == rowids
    return np.array([term.idf for term in terms]), held


def _rows(snapshot: Snapshot, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each chunk's keyword-index rowid and stored vector, in the order of ``ids`` (from Chroma for a chunk
    stored before our copy of the vectors)."""
    found = snapshot.stored(ids)
    place = {chunk_id: i for i, chunk_id in enumerate(found.ids)}
    lacking = [chunk_id for chunk_id in ids if chunk_id not in place]
    if not lacking:
        at = [place[chunk_id] for chunk_id in ids]
        return found.rowids[at], found.vectors[at]
    rowids = dict(snapshot.db.execute("SELECT m.chunk_id, m.rowid FROM json_each(?) AS w CROSS JOIN chunk_meta m "
                                      "ON m.chunk_id = w.value", (json.dumps(lacking),)).fetchall())
    vectors = chroma_vectors(snapshot.store.collection, lacking) if snapshot.store.collection is not None else {}
    return (np.array([found.rowids[place[i]] if i in place else rowids[i] for i in ids], dtype=np.int64),
            np.stack([found.vectors[place[i]] if i in place else np.asarray(vectors[i], dtype=np.float32)
                      for i in ids]))
