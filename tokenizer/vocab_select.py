"""Token selection with greedy encoding in the loop (the core of ``vocab train`` and ``vocab extend``).

Start from the required tokens (bytes, completeness characters, or a base vocab being extended) plus a pool of
candidates, then repeat: encode every language's scoring text (its held-out slice, topped up with training text
to ``score_chars``) with our trie tokenizer (greedy longest match, exactly the inference rule), score each
token, remove the lowest-scoring ones, re-encode. Once the vocabulary
has its target size, tokens greedy never uses are dropped and refilled with the best removed candidates, and
the loop re-encodes to check them (``refill_rounds`` times).

Score of token ``t`` (its *utility*)::

    U(t) = saving(t) * sum_l  W_l * count_l(t)        W_l = lang_weight_l * parity_l ** fairness / N_l

- ``count_l(t)``: how often greedy emits ``t`` on language ``l``'s scoring text (at most ``chunk_cap`` times
  per chunk, so that one document repeating a name cannot carry a token), ``N_l`` all tokens there,
  so every language's *relative* cost counts (a token saving 1 % of Tamil is worth one saving 1 % of English);
- ``saving(t)``: tokens greedy needs to spell ``t`` without ``t`` (its longest proper prefix, then greedy on
  the rest), minus one: what removing it costs at each use;
- ``parity_l``: the language's tokens per bz2-compressed byte of its scoring text, relative to the reference
  language. Compressed size stands in for "the same content" because the training corpus is not parallel;
  bz2 rather than zlib because its block sorting absorbs the redundancy of multi-byte UTF-8 (on the UDHR's
  parallel articles, compressed sizes relative to English spread 1.31x across 15 scripts with bz2, 1.56x
  with zlib, 4.6x for raw bytes);
  ``fairness`` (the knob) 0 weighs all languages' relative costs equally; higher values move tokens to the
  languages that are worst off, at the cost of English (and other cheap languages);
- case/leading-space variant families (same ``strip().lower()``) keep at most ``max_variants`` members.
"""

from __future__ import annotations

import bz2
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rwkv_data.tokenizer.vocab_settings import VocabSettings

if TYPE_CHECKING:
    from rwkv_data.tokenizer.vocab_sample import LangSample

Progress = Callable[[str], None]
_PROXY_BYTES = 1 << 20  # bz2 (slow) sees at most this much of each language; the size is scaled up


def variant_key(tok: bytes) -> str | None:
    """The case/leading-space family of a token (``" The"`` and ``"the"`` share ``"the"``); None if no letters."""
    try:
        text = tok.decode("utf-8")
    except UnicodeDecodeError:
        return None
    key = text.strip().lower()
    return key if any(c.isalpha() for c in key) else None


class _Scorer:
    """Encodes the scoring text with a vocabulary and derives per-token utilities."""

    def __init__(self, samples: dict[str, LangSample], cfg: VocabSettings) -> None:
        self.cfg = cfg
        self.langs = sorted(samples)
        self.texts = {lang: samples[lang].score or samples[lang].train[:1] for lang in self.langs}
        raw = {lang: "".join(t).encode("utf-8") for lang, t in self.texts.items()}
        self.bytes = {lang: len(b) for lang, b in raw.items()}
        self.chars = {lang: sum(map(len, t)) for lang, t in self.texts.items()}
        self.zbytes = {lang: max(1, len(bz2.compress(b[:_PROXY_BYTES], 9))) * max(1, len(b)) / max(1, min(
            len(b), _PROXY_BYTES)) for lang, b in raw.items()}
        self.weight = np.array([float(cfg.lang_weights.get(lang, 1.0)) for lang in self.langs])

    def encode(self, tokens: Sequence[bytes]) -> tuple[Any, np.ndarray, np.ndarray]:
        """Greedy-encode every language's scoring text with ``tokens`` (id = index + 1).

        Returns the tokenizer, the counts ``[L, V+1]`` and the same counts with each token's uses capped at
        ``chunk_cap`` per chunk (~2,000 characters; 0 = no cap), which damps tokens that a single document
        repeats (file names, options in a man page) in favour of tokens used across many documents.
        """
        from rwkv_data.tokenizer import TrieTokenizer, Vocab

        tok = TrieTokenizer(Vocab.from_tokens({k + 1: t for k, t in enumerate(tokens)}, name="candidate"))
        counts = np.zeros((len(self.langs), len(tokens) + 1), dtype=np.int64)
        capped = np.zeros_like(counts) if self.cfg.chunk_cap > 0 else counts
        threads = self.cfg.threads or None
        for i, lang in enumerate(self.langs):
            chunks = tok.encode_batch(self.texts[lang], num_threads=threads, as_array=True)
            ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
            counts[i] = np.bincount(ids.astype(np.int64), minlength=len(tokens) + 1)
            if self.cfg.chunk_cap > 0:
                for c in chunks:
                    u, n = np.unique(c, return_counts=True)
                    capped[i, u] += np.minimum(n, self.cfg.chunk_cap)
        return tok, counts, capped

    def parity(self, counts: np.ndarray) -> np.ndarray:
        """Tokens per compressed byte of each language, relative to the reference (or the median) language."""
        n = counts.sum(axis=1).astype(np.float64)
        cost = n / np.array([self.zbytes[lang] for lang in self.langs])
        ref = self.cfg.reference_lang
        base = cost[self.langs.index(ref)] if ref in self.langs else float(np.median(cost))
        return cost / base

    def utility(self, tok: Any, tokens: Sequence[bytes], counts: np.ndarray, capped: np.ndarray) -> np.ndarray:
        """``U`` of every token (index-aligned with ``tokens``) under the current vocabulary."""
        n = np.maximum(counts.sum(axis=1), 1).astype(np.float64)
        w = self.weight * self.parity(counts) ** self.cfg.fairness / n
        used = (w[:, None] * capped[:, 1:]).sum(axis=0)
        saving = np.zeros(len(tokens))
        vocab = tok.vocab.tokens
        for k in np.flatnonzero(used > 0):
            t = tokens[k]
            if len(t) > 1:
                first = tok.encode_bytes(t[:-1])[0]
                saving[k] = len(tok.encode_bytes(t[len(vocab[first]):]))
        return used * saving

    def report(self, tokens: Sequence[bytes], counts: np.ndarray) -> dict[str, dict[str, Any]]:
        """Per-language figures on the scoring text: tokens, chars/token, byte-fallback share, parity proxy."""
        par = self.parity(counts)
        high = np.array([len(t) == 1 and t[0] >= 0x80 for t in tokens])
        out = {}
        for i, lang in enumerate(self.langs):
            n = int(counts[i].sum())
            out[lang] = {"score_tokens": n, "score_bytes": self.bytes[lang],
                         "chars_per_token": round(self.chars[lang] / max(n, 1), 4),
                         "byte_fallback": round(float(counts[i, 1:][high].sum()) / max(n, 1), 6),
                         "parity_proxy": round(float(par[i]), 4)}
        return out


def _enforce_variants(active: list[bytes], util: np.ndarray, removable: np.ndarray, cap: int) -> set[int]:
    """Indices of the lowest-utility members beyond ``cap`` in each case/leading-space family."""
    families: dict[str, list[int]] = defaultdict(list)
    for k, t in enumerate(active):
        if removable[k]:
            key = variant_key(t)
            if key is not None:
                families[key].append(k)
    drop: set[int] = set()
    for members in families.values():
        if len(members) > cap:
            members.sort(key=lambda k: (-util[k], active[k]))
            drop.update(members[cap:])
    return drop


class _Selection:
    """The state of one selection: the required tokens, the active candidates, the removed ones (``reserve``,
    with their last utility, for the refill) and the history of encoding rounds."""

    def __init__(self, samples: dict[str, LangSample], required: Sequence[bytes], pool: Sequence[bytes],
                 n_tokens: int, cfg: VocabSettings, progress: Progress | None) -> None:
        self.req = list(dict.fromkeys(required))
        req_set = set(self.req)
        cand = [t for t in dict.fromkeys(pool) if t not in req_set]
        self.rank = {t: k for k, t in enumerate(cand)}
        self.scorer = _Scorer(samples, cfg)
        self.active = self.req + cand
        self.n_tokens, self.cfg, self.progress = n_tokens, cfg, progress
        self.history: list[dict[str, Any]] = []
        self.reserve: dict[bytes, float] = {}  # removed candidate -> its last utility

    def score(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """Encode the scoring text with the active tokens: (counts ``[L, V+1]``, utilities)."""
        tok, counts, capped = self.scorer.encode(self.active)
        util = self.scorer.utility(tok, self.active, counts, capped)
        self.history.append({"step": label, "size": len(self.active), "score_tokens": int(counts.sum()),
                             "unused": int(((counts[:, 1:].sum(axis=0)) == 0)[len(self.req):].sum())})
        if self.progress:
            self.progress(f"{label}: {len(self.active):,} tokens, {int(counts.sum()):,} scoring tokens")
        return counts, util

    def remove(self, drop: Iterable[int], util: np.ndarray | None = None) -> None:
        """Move the active tokens at indices ``drop`` to the reserve (with their utility, or 0)."""
        gone = set(drop)
        self.reserve.update({self.active[i]: float(util[i]) if util is not None else 0.0 for i in gone})
        self.active = [t for i, t in enumerate(self.active) if i not in gone]

    def prune(self) -> None:
        """``rounds`` rounds, each removing the lowest-utility candidates (and variants beyond the cap) until
        ``n_tokens`` remain; without rounds, the best-ranked candidates are kept."""
        rounds, n_req = self.cfg.rounds, len(self.req)
        for r in range(rounds):
            excess = len(self.active) - self.n_tokens
            if excess <= 0:
                break
            _, util = self.score(f"prune {r + 1}/{rounds}")
            removable = np.arange(len(self.active)) >= n_req
            drop = _enforce_variants(self.active, util, removable, self.cfg.max_variants)
            k = max(math.ceil(excess / (rounds - r)), len(drop))
            order = sorted((i for i in range(n_req, len(self.active)) if i not in drop),
                           key=lambda i: (util[i], -self.rank[self.active[i]]))
            drop.update(order[:max(0, k - len(drop))])
            self.remove(drop, util)
        if len(self.active) > self.n_tokens:
            self.remove(range(self.n_tokens, len(self.active)))

    def _refill_choice(self, used: np.ndarray, room: int, n_unused: int) -> list[bytes]:
        """The best removed tokens to bring back (by last utility, then rank), variant cap respected."""
        fams: dict[str, int] = defaultdict(int)
        for i, t in enumerate(self.active):
            if used[i] or i < len(self.req):
                key = variant_key(t)
                if key is not None:
                    fams[key] += 1
        refill: list[bytes] = []
        for t in sorted(self.reserve, key=lambda t: (-self.reserve[t], self.rank[t])):
            if len(refill) >= n_unused + room:
                break
            key = variant_key(t)
            if key is not None and fams[key] >= self.cfg.max_variants:
                continue
            refill.append(t)
            if key is not None:
                fams[key] += 1
        return refill

    def refill(self) -> None:
        """``refill_rounds`` times: replace the candidates greedy never uses by the best removed ones."""
        for r in range(self.cfg.refill_rounds):
            counts, _ = self.score(f"refill {r + 1}/{self.cfg.refill_rounds}")
            used = counts[:, 1:].sum(axis=0) > 0
            unused = [i for i in range(len(self.req), len(self.active)) if not used[i]]
            room = max(0, self.n_tokens - len(self.active))
            refill = self._refill_choice(used, room, len(unused))
            if not refill:
                break
            for t in refill:
                del self.reserve[t]
            unused.sort(key=lambda i: -self.rank[self.active[i]])  # the worst-ranked unused make room first
            self.remove(unused[:max(0, len(refill) - room)])
            self.active += refill

    def finish(self) -> tuple[list[bytes], dict[str, Any]]:
        """Required tokens first, then candidates in rank order; a final encoding for the stats."""
        extra = sorted(self.active[len(self.req):], key=lambda t: self.rank[t])
        self.active = self.req + extra
        counts, _ = self.score("final")
        used = counts[:, 1:].sum(axis=0) > 0
        with_key = [k for k in map(variant_key, self.active) if k is not None]
        langs = self.scorer.langs
        stats = {
            "languages": self.scorer.report(self.active, counts),
            "history": self.history,
            "unused_tokens": int((~used).sum()),  # bytes and completeness characters included
            "variant_share": round(1 - len(set(with_key)) / max(len(with_key), 1), 4),
            "reference_lang": self.cfg.reference_lang if self.cfg.reference_lang in langs else "median",
        }
        return self.active, stats


def select_tokens(samples: dict[str, LangSample], required: Sequence[bytes], pool: Sequence[bytes],
                  n_tokens: int, cfg: VocabSettings, progress: Progress | None = None) -> tuple[list[bytes], dict]:
    """Choose ``n_tokens`` tokens: all of ``required`` plus the best of ``pool`` under greedy encoding.

    Args:
        samples: per-language samples; their scoring text (held-out + training top-up) is what gets encoded.
        required: tokens that always stay (the 256 bytes first; completeness characters; kept base tokens).
        pool: candidates, best first (rank breaks utility ties and orders the refill of unscored tokens).
        n_tokens: the number of tokens wanted (fewer when the pool runs out).
        cfg: ``rounds``, ``refill_rounds``, ``max_variants``, ``fairness``, ``lang_weights``, ``threads``.
        progress: called once per encoding round.

    Returns:
        The selected tokens (required first, then pool tokens in rank order) and a stats dict.
    """
    sel = _Selection(samples, required, pool, n_tokens, cfg, progress)
    sel.prune()
    sel.refill()
    return sel.finish()
