"""Frozen configuration dataclasses for every job; each default is defined here and nowhere else.

The CLI reads its option defaults from these classes (``default=ShardConfig.ctx_lens``), and TOML config
files load into them with :func:`load_toml`, flags overriding the file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from rwkv_data.errors import ConfigError

T = TypeVar("T")


def load_toml(cls: type[T], path: str | Path | None, section: str | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from a TOML file (optionally one ``[section]``) and overrides.

    Overrides whose value is ``None`` are ignored, so unset CLI flags keep the file's value or the default.
    Unknown keys raise :class:`ConfigError` naming the key and the file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        data = raw.get(section, {}) if section else raw
    data.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}" + (f" [{section}]" if section else "") if path else "options"
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    return cls(**data)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (paths and tuples become strings and lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


# The longest record (jsonl line, .txt document or paragraph, table cell) the corpus readers accept: a longer one is
# a bad record (an error, or a counted skip with on_error="skip") and is never held in memory beyond this. A
# document's text is rarely over a few MB (a long novel is ~2 MB); 64 MiB leaves room for whole books and code
# files while a reader's memory stays bounded (a record, its str and its tokens: a few hundred MB at most).
MAX_RECORD_BYTES = 64 << 20

# Job configs are added below, one frozen dataclass per job.


# ---- end-to-end run (issue 8) -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """``rwkv-data run``: vocab -> shard -> train -> evaluate -> audit in one run folder (pipelines/run.py).

    Each stage keeps its own job config; the pipeline sets the paths between stages (vocab file, shard prefix,
    checkpoint, output folders) inside ``out``. The stage defaults here are the demo's, sized for the bundled
    demo corpus (110 KB, 38 languages) to finish in a few minutes on a 2-core CPU; a TOML file with
    ``[vocab]``, ``[shard]``, ``[train]``, ``[evaluate]`` and ``[audit]`` sections overrides them
    (examples/demo.toml).
    """

    out: str = ""  # run folder ("" = runs/demo, or runs/<config file stem> with a config file)
    inputs: tuple[str, ...] = ()  # corpus files, folders or globs with a lang field (empty = the demo corpus)
    skip: tuple[str, ...] = ()  # stages not to run (their finished outputs, if any, are still used)
    redo: tuple[str, ...] = ()  # stages to run again although finished
    threads: int = 0  # torch CPU threads (0 = torch's default, or 1 when the load average >= the cores)
    # demo corpus: 20k training tokens, so 3 epochs of 60 steps; more overfits (val bpb rises after ~4 epochs)
    vocab: VocabConfig = dataclasses.field(default_factory=lambda: VocabConfig(
        vocab_size=4096, char_seed="", script_closure=0))
    shard: ShardConfig = dataclasses.field(default_factory=lambda: ShardConfig(
        val_min_docs=2, ctx_lens=(256,), progress=False))
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        ctx_len=256, micro_bsz=4, token_budget=61_440, lr_init=3e-3, lr_final=3e-4, warmup_steps=5,
        eval_every=20))
    evaluate: EvalConfig = dataclasses.field(default_factory=lambda: EvalConfig(ctx_len=256))
    audit: AuditConfig = dataclasses.field(default_factory=lambda: AuditConfig(tokenizers=("world",)))


# ---- model jobs: train, evaluate, finetune (issue 5) ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """``rwkv-data train``: RWKV-LM's recipe on a binidx prefix; defaults sized for a tiny model on a CPU."""

    data: str = ""  # binidx prefix P written by `rwkv-data shard` (P.bin, P.idx, P.meta.json)
    out_dir: str = "out/train"
    val_data: str = ""  # P_val prefix evaluated every eval_every steps ("" = no evaluation while training)
    vocab: str = ""  # the shard's tokenizer: "world" or a vocab file ("" = the one P.meta.json records)
    init: str = ""  # start from this checkpoint (.pth) instead of a fresh initialisation
    n_layer: int = 2
    n_embd: int = 128
    head_size: int = 64
    vocab_size: int = 0  # 0 = from P.meta.json (tokenizer size) or 65536
    ctx_len: int = 256
    micro_bsz: int = 4
    grad_accum: int = 1
    lr_init: float = 1e-3  # RWKV-LM's demo uses 6e-4 for L12-D768; tiny models take more
    lr_final: float = 1e-4
    warmup_steps: int = 10
    beta1: float = 0.9
    beta2: float = 0.99
    adam_eps: float = 1e-18
    weight_decay: float = 0.001
    grad_clip: float = 1.0
    token_budget: int = 0  # tokens the cosine spans; 0 = one pass over the data (my_exit_tokens)
    max_steps: int = 0  # stop after this many optimizer steps (0 = at the end of the budget)
    magic_prime: int = 0  # 0 = from P.meta.json for ctx_len, else computed
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 42
    save_every: int = 500  # checkpoint (weights + optimiser + RNG) every N steps, and at the last step
    eval_every: int = 0  # evaluate val_data every N steps (0 = only before and after)
    eval_docs: int = 64  # documents per language for evaluation while training
    log_every: int = 10
    save_dtype: str = "fp32"  # fp32 | bf16 for the official .pth (resume state keeps fp32 weights either way)
    resume: bool = False  # continue from out_dir/last.json
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        from rwkv_data.config_checks import check_train  # noqa: PLC0415

        check_train(self)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """``rwkv-data evaluate``: bits per byte / per character per language with bootstrap intervals."""

    checkpoint: str = ""
    vocab: str = ""  # "world" or a vocab file ("" = the one P.meta.json records; World for text files)
    data: str = ""  # P_val binidx prefix (languages from its meta) ...
    texts: tuple[str, ...] = ()  # ... or raw text files (.txt: one document, language = file stem; .jsonl)
    ctx_len: int = 512  # longer documents run in chunks with the state carried over
    batch_size: int = 4  # documents per forward; logits take batch_size * ctx_len * vocab * 4 bytes
    max_docs: int = 0  # per language (0 = all)
    bootstrap: int = 1000  # resamples of documents for the confidence interval
    confidence: float = 0.95
    seed: int = 0
    out_dir: str = "out/eval"  # eval.json and eval.csv
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        from rwkv_data.config_checks import check_eval  # noqa: PLC0415

        check_eval(self)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    """``rwkv-data finetune``: continue an official checkpoint on new-language data, optionally growing the vocab."""

    out_dir: str = "out/finetune"
    new_tokens: str = ""  # vocab file (RWKV format) or a list (one token per line) to add; "" = keep the vocab
    replay_data: str = ""  # binidx prefix of the original data mixed back in ("" = none)
    replay_share: float = 0.75  # share of samples drawn from replay_data (acceptance sweep: 0.5 let others rise 4%)
    trainable: str = "all"  # all | embeddings | last:N
    lora_rank: int = 0  # > 0: LoRA on the large matrices (merged into the checkpoint at save)
    lora_alpha: float = 16.0
    lr_init: float = 3e-4  # tiny models; RWKV-LM advises ~1e-5 for official 0.1B+ checkpoints
    lr_final: float = 3e-5

    def __post_init__(self) -> None:
        from rwkv_data.config_checks import check_finetune  # noqa: PLC0415

        check_finetune(self)


@dataclasses.dataclass(frozen=True)
class VocabConfig:
    """``rwkv-data vocab train`` / ``vocab extend``: a greedy-longest-match vocabulary from a multilingual corpus.

    Sizes of text are in characters. Design and measurements: docs/vocab.md.
    """

    inputs: tuple[str, ...] = ()  # files, folders or globs read with pipelines.readers (records need `lang`)
    max_record_bytes: int = MAX_RECORD_BYTES  # a longer line / document / cell in the inputs is an error
    output: str = "vocab.txt"  # World text form (.json: the JSON twin); meta goes to <output>.meta.json
    vocab_size: int = 65536  # ids 0..vocab_size-1; id 0 is reserved (end of document), ids 1..256 the bytes
    languages: tuple[str, ...] = ()  # train on these languages only (empty: every language in the input)
    # language-balanced sampling of the training text
    sampling: str = "unimax"  # "unimax" (Chung et al. 2023) or "temperature" (p ~ n^(1/T))
    sample_chars: int = 40_000_000  # total characters fed to the candidate trainers
    max_epochs: float = 3.0  # no language is repeated more than this (UniMax's cap; also caps temperature)
    temperature: float = 3.33  # mT5's tau for sampling="temperature"
    lang_caps: dict[str, int] = dataclasses.field(default_factory=dict)  # per-language character caps
    lang_weights: dict[str, float] = dataclasses.field(default_factory=lambda: {"en": 8.0})  # budget x utility
    heldout_chars: int = 150_000  # per language, set aside (never trained on) to score tokens with greedy encoding
    heldout_fraction: float = 0.1  # ... but at most this share of a language
    score_chars: int = 1_000_000  # per language, text encoded when scoring: the held-out, topped up with training
    # candidates
    pretokenizer: str = "mark-aware"  # "mark-aware" (combining marks stay with their letter) or "gpt2"
    candidates: tuple[str, ...] = ("bpe", "ngram")  # any of "bpe", "unigram" (slow), "ngram"
    candidate_factor: float = 2.2  # candidate pool = factor x free slots; greedy pruning removes the rest
    max_token_bytes: int = 32
    char_min_count: int = 3  # character completeness: a character seen this often gets its own token ...
    char_min_share: float = 1e-6  # ... if it is also at least this share of its script's characters
    script_closure: int = 400  # scripts seen in the corpus with at most this many characters get all of them
    char_seed: str = "charsets"  # + level-1 Han/Hangul of GB2312, Big5, JIS, KS X 1001 ("world", a vocab, "" = off)
    # coverage floor (tokenizer/vocab_coverage.py, docs/vocab.md): text in scripts the corpus lacks stays encodable
    coverage: str = "world"  # keep this vocab's characters, their scripts' letters and marks, its partial-UTF-8
    #   tokens and its tokens of scripts thin in the corpus ("world", a vocab file, or "" = off)
    coverage_thin_chars: int = 1_000_000  # a script with fewer corpus characters than this is "thin"
    coverage_share: float = 0.25  # the floor's tokens not otherwise required take at most this share of vocab_size
    # selection with greedy encoding in the loop
    rounds: int = 8  # pruning rounds from the pool down to vocab_size
    refill_rounds: int = 2  # then: drop tokens greedy never uses, refill with the best removed ones
    max_variants: int = 4  # cap on case/leading-space variants (same strip().lower()) per family
    chunk_cap: int = 4  # count a token at most this often per ~2,000-character chunk when scoring (0 = no cap)
    fairness: float = 0.5  # 0: every language's relative cost counts equally; higher favours the worst
    reference_lang: str = "en"  # parity reference (falls back to the median language when absent)
    seed: int = 0
    threads: int = 0  # encoder and HF trainer threads (0: all cores)
    # vocab extend
    base: str = ""  # the vocab to extend ("" = RWKV World rwkv_vocab_v20230424)
    add_tokens: int = 8192  # new tokens (they take the ids of replaced tokens first, then max_id+1, ...)
    replace_unused: bool = False  # also replace base tokens greedy never uses on the input corpus
    idmap: str = ""  # id map JSON for the embedding initialisation ("" = <output>.idmap.json)
    first_new_id: int = 0  # 0: past the base max_id, rounded up to 64 (World: 65536, its embedding rows)
    focus: bool = True  # extend: add only tokens with a character of the target scripts (no punctuation-only ones)
    focus_scripts: tuple[str, ...] = ()  # ISO 15924 codes ("" = each input language's scripts with >= 10 % of it)


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """``rwkv-data shard``: corpora -> RWKV-readable binidx shards ``P.bin/.idx`` + ``P_val`` + ``P.meta.json``.

    Format and semantics: docs/shard-format.md. Sizes of text are in bytes, budgets in tokens.
    """

    inputs: tuple[str, ...] = ()  # files, folders, globs, datasets save_to_disk folders, hf:NAME[:CONFIG]
    output: str = "data/shard"  # the prefix P
    vocab: str = ""  # vocab file ("" = RWKV World rwkv_vocab_v20230424)
    tokenizer_impl: str = "auto"  # "auto" | "native" | "python"
    text_field: str = "text"
    lang_field: str = "lang"
    lang: str = ""  # language of records without lang_field and of .txt files ("" = "und")
    split_paragraphs: bool = False  # .txt: one document per blank-line separated paragraph
    hf_split: str = "train"  # split of a DatasetDict folder or a hub dataset
    on_error: str = "raise"  # "raise": stop at the first bad record; "skip": count it by reason
    max_record_bytes: int = MAX_RECORD_BYTES  # longer lines / documents / cells are bad records (record_too_large)
    val_fraction: float = 0.01  # share of each language's documents in P_val (by content hash)
    val_min_docs: int = 10  # ... but at least this many per language (at most half of its documents)
    seed: int = 0  # shuffle and subsampling seed
    lang_budgets: dict[str, int] = dataclasses.field(default_factory=dict)  # lang -> training tokens target
    temperature: float = 0.0  # > 0: weight languages to p**(1/T) of their token share (0 = natural mix)
    ctx_lens: tuple[int, ...] = (512, 4096)  # magic_prime / my_exit_tokens are computed for each
    lang_array: bool = True  # write P.lang.npy (uint16 index into meta "languages", one per item)
    workers: int = 0  # tokenizer processes; 0 = one per CPU this process may use
    work_dir: str = ""  # parts and completion markers ("" = P.work next to the output)
    keep_work: bool = False  # keep the parts after success (a rerun then only redoes the merge)
    bucket_docs: int = 1 << 20  # shuffle records per bucket (merge RAM ~ 26 B x this); never changes bytes
    progress: bool = True  # tqdm bar on stderr
    executor: str = "local"  # "local" (processes on this machine) or "ray" (Ray tasks: pipelines/shard/ray_executor.py)
    ray_address: str | None = None  # ray: "auto", HOST:PORT or ray://HOST:10001 (None = a local Ray instance)
    force: bool = False  # overwrite existing output files that no P.meta.json of rwkv-data recognises


# ---- audit job (issue 7) -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """``rwkv-data audit``: tokenization efficiency per language and tokenizer (docs/metrics.md)."""

    corpus: str = ""  # UDHR-layout parallel .jsonl(.zst), mono folder/files (<lang>.jsonl.zst), or flores:<split>
    tokenizers: tuple[str, ...] = ("world", "bytes")  # specs: world, bytes, vocab.txt, hf:, tiktoken:, sp:
    out_dir: str = "out/audit"  # summary.json, languages.csv, report.html, config.json, stats.json
    layout: str = "auto"  # auto | parallel | mono
    reference: str = "eng"  # parity reference language (UDHR code, lang tag, or FLORES eng_Latn)
    langs: tuple[str, ...] = ()  # audit only these languages (empty: all)
    max_bytes_per_lang: int = 2_000_000  # mono corpora: documents per language up to this many bytes (0 = all)
    bootstrap: int = 1000  # resamples of articles/sentences/documents for the confidence intervals
    confidence: float = 0.95
    seed: int = 0
    alpha: float = 2.5  # Rényi order (Zouhar et al. 2023)
    vocab_size: int = 0  # |V| for Rényi efficiency (0 = each tokenizer's own size)
    greedy_gap: bool = True  # minimum-token DP for greedy (trie) tokenizers
    fail_if: tuple[str, ...] = ()  # CI thresholds, e.g. "max_parity>2.5" (exit 1 when any holds)
    html: bool = True
    num_threads: int = 0  # encoder threads for trie tokenizers (0 = the tokenizer's default)


# ---- tokenizer comparison (issue 17) -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CompareVariant:
    """One variant of ``rwkv-data compare``: a tokenizer, optionally a starting checkpoint and a vocab extension."""

    name: str = ""
    tokenizer: str = "world"  # world | bytes | train (a vocab trained on the corpus, [vocab] options) | a vocab file
    vocab_size: int = 0  # tokenizer = "train": its size (0 = [vocab] vocab_size)
    init: str = ""  # start from this checkpoint (fine-tuning) instead of a fresh model
    extend_lang: str = ""  # with init: extend the tokenizer with tokens for this language (vocab extend), grow emb
    extend_tokens: int = 1024  # ... by this many tokens
    replay_share: float = 0.0  # with init: share of samples replayed from the whole corpus (0 = target only)
    target_lang: str = ""  # with init: the language fine-tuned on (extend_lang when empty; "" = the whole corpus)


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """``rwkv-data compare``: per-language bits per byte of N tokenizer variants on the same held-out documents.

    Sections ``[vocab]``, ``[shard]``, ``[train]`` and ``[evaluate]`` hold the job options every variant shares
    (pipelines/compare/job.py); ``[[variants]]`` lists the variants (docs/compare.md, examples/compare_cpu.toml).
    """

    out: str = ""  # run folder ("" = runs/<config file stem>)
    inputs: tuple[str, ...] = ()  # corpus files, folders or globs with a lang field
    variants: tuple[CompareVariant, ...] = ()
    baseline: str = ""  # variant the others are compared with ("" = the first)
    budgets: tuple[str, ...] = ("compute", "text")  # compute: same token positions; text: same training bytes
    train_tokens: int = 0  # equal compute: token positions every variant trains (0 = [train] token_budget)
    train_bytes: int = 0  # equal text: training bytes of every variant (0 = what the baseline covers in train_tokens)
    seeds: tuple[int, ...] = (0,)  # one model per variant, budget and seed
    heldout_docs: int = 0  # held-out documents scored per language, the first by content id (0 = all)
    heldout_chars: int = 0  # score the first N characters of each held-out document (0 = whole; CPU presets)
    skip: tuple[str, ...] = ()  # read by the stage runner; compare refuses a non-empty skip (every stage is needed)
    redo: tuple[str, ...] = ()  # stage names to run again although finished (e.g. "report")
    threads: int = 0  # torch CPU threads (0 = torch's default, or 1 when the load average >= the cores)
    vocab: VocabConfig = dataclasses.field(default_factory=lambda: VocabConfig(vocab_size=4096, char_seed=""))
    shard: ShardConfig = dataclasses.field(default_factory=lambda: ShardConfig(val_min_docs=10, progress=False))
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        n_layer=2, n_embd=64, head_size=32, ctx_len=128, micro_bsz=4, token_budget=65_536, lr_init=3e-3,
        lr_final=3e-4, warmup_steps=5, save_every=0))
    evaluate: EvalConfig = dataclasses.field(default_factory=lambda: EvalConfig(ctx_len=256, batch_size=4))
