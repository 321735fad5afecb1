"""Frozen configuration dataclasses for every job; each default is defined here and nowhere else.

The CLI reads its option defaults from these classes, and TOML config files load into them with
:func:`load_toml` (flags override the file). :class:`CorpusSpec` is how every job that reads text reads it;
the job configs that read text extend it, so its keys sit beside the job's own (``[shard] text_field``).
A class's ``ALIASES`` maps old spellings of keys to their names (``out`` -> ``out_dir``).

Names: ``output`` is a file or prefix a job writes, ``out_dir`` a folder; ``threads`` are threads inside one
process, ``workers`` processes.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from rwkv_data.config_load import load_toml, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.tokenizer.vocab_settings import VocabSettings

__all__ = ["AuditConfig", "CompareConfig", "CompareVariant", "CorpusSpec", "EvalConfig", "FinetuneConfig",
           "RunConfig", "ShardConfig", "TrainConfig", "VocabConfig", "VocabSettings", "load_toml", "to_dict"]

STAGES = ("vocab", "shard", "train", "evaluate", "audit")  # the stages of `rwkv-data run`, in order

# The longest record (jsonl line, .txt document or paragraph, table cell) the corpus readers accept: a longer one is
# a bad record (an error, or a counted skip with on_error="skip") and is never held in memory beyond this. A
# document's text is rarely over a few MB (a long novel is ~2 MB); 64 MiB leaves room for whole books and code
# files while a reader's memory stays bounded (a record, its str and its tokens: a few hundred MB at most).
MAX_RECORD_BYTES = 64 << 20
RECORD_BYTES_CEILING = (1 << 32) - 1  # a shard stores a document's byte count in 32 bits
LANG_MAX_CHARS = 64  # a language code (BCP 47 tags and FLORES codes are far shorter)
# Distinct languages a vocab or audit job accepts: the largest multilingual corpora tag ~2,000 language-script
# pairs, while a wrong --lang-field (a URL or an id per record) gives one per document and, left unchecked, hours of
# per-language work and gigabytes of per-language state from a few megabytes of input.
MAX_LANGUAGES = 4096


def is_language_code(lang: str) -> bool:
    """Whether ``lang`` can name a language in shards, reports and file names: 1-64 characters, each a letter
    or digit (any script), '-', '_' or '.', and not made of dots alone."""
    return (0 < len(lang) <= LANG_MAX_CHARS and all(c.isalnum() or c in "-_." for c in lang)
            and lang.strip(".") != "")


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages about huge values."""
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r):,} characters)"


def check_threads(threads: object) -> None:
    """ConfigError unless ``threads`` (torch CPU threads of run and compare) is an integer in [0, MAX_THREADS]."""
    from rwkv_data.config_checks import MAX_THREADS  # noqa: PLC0415

    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        raise ConfigError(f"threads (--threads) must be an integer in [0, {MAX_THREADS}] (0 = torch's default), "
                          f"not {short_repr(threads)}")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """How a job reads its corpus: which inputs, which record fields, which language, what to do with bad records.

    Used by every job that reads text (vocab, shard, audit, evaluate) and by ``rwkv-data run`` as its
    ``[corpus]`` section; :func:`rwkv_data.pipelines.corpus.spec.read_options` turns it into the readers' options.
    """

    inputs: tuple[str, ...] = ()  # files, folders, globs, datasets save_to_disk folders, hf:NAME[:CONFIG]
    text_field: str = "text"  # jsonl key / table column of the text
    lang_field: str = "lang"  # jsonl key / table column of the language
    lang: str = ""  # language of records without lang_field and of .txt files ("" = "und")
    on_error: str = "raise"  # "raise": stop at the first bad record; "skip": count it by reason
    max_record_bytes: int = MAX_RECORD_BYTES  # longer lines / documents / cells are bad records (record_too_large)
    split_paragraphs: bool = False  # .txt: one document per blank-line separated paragraph
    hf_split: str = "train"  # split of a DatasetDict folder or a hub dataset

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', not {self.on_error!r}")
        if isinstance(self.max_record_bytes, bool) or not isinstance(self.max_record_bytes, int) or \
                not 0 < self.max_record_bytes <= RECORD_BYTES_CEILING:
            raise ConfigError(f"max_record_bytes (--max-record-bytes) must be a byte count in [1, "
                              f"{RECORD_BYTES_CEILING:,}], not {short_repr(self.max_record_bytes)}")
        if not self.text_field or not self.lang_field:
            raise ConfigError("text_field and lang_field must not be empty")
        if self.lang and (not isinstance(self.lang, str) or not is_language_code(self.lang)):
            raise ConfigError(f"lang {short_repr(self.lang)} is not a language code (1-{LANG_MAX_CHARS} letters, "
                              "digits, '-', '_' or '.', e.g. 'sw', 'zh-Hans', 'eng_Latn')")

    def corpus_spec(self) -> CorpusSpec:
        """The corpus fields alone (of a job config that extends this class)."""
        return CorpusSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(CorpusSpec)})


CORPUS_KEYS = tuple(f.name for f in dataclasses.fields(CorpusSpec))


@dataclasses.dataclass(frozen=True)
class VocabConfig(CorpusSpec, VocabSettings):
    """``rwkv-data vocab train`` / ``vocab extend``: the corpus, the trainer's settings and the files written."""

    output: str = "vocab.txt"  # World text form (.json: the JSON twin); meta goes to <output>.meta.json
    base: str = "world"  # vocab extend: the vocab to extend (a tokenizer spec; "world" = RWKV World)
    idmap: str = ""  # vocab extend: id map JSON for the embedding initialisation ("" = <output>.idmap.json)



@dataclasses.dataclass(frozen=True)
class ShardConfig(CorpusSpec):
    """``rwkv-data shard``: corpora -> RWKV-readable binidx shards ``P.bin/.idx`` + ``P_val`` + ``P.meta.json``.

    Format and semantics: docs/shard-format.md. Sizes of text are in bytes, budgets in tokens.
    """

    output: str = "data/shard"  # the prefix P
    vocab: str = "world"  # tokenizer spec: "world" (RWKV World rwkv_vocab_v20230424) or an RWKV vocab file
    tokenizer_impl: str = "auto"  # "auto" | "native" | "python"
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
    bucket_docs: int = 1 << 20  # shuffle records per bucket (merge RAM ~ 32 B x this); never changes bytes
    progress: bool = True  # tqdm bar on stderr
    executor: str = "local"  # "local" (processes on this machine) or "ray" (Ray tasks: pipelines/shard/ray_executor.py)
    ray_address: str | None = None  # ray: "auto", HOST:PORT or ray://HOST:10001 (None = a local Ray instance)
    force: bool = False  # overwrite existing output files that no P.meta.json of rwkv-data recognises


@dataclasses.dataclass(frozen=True)
class AuditConfig(CorpusSpec):
    """``rwkv-data audit``: tokenization efficiency per language and tokenizer (docs/metrics.md).

    The corpus is ``corpus`` (a UDHR-layout parallel .jsonl(.zst), a mono folder of <lang>.jsonl.zst, or
    flores:<split>) or, when that is empty, the monolingual documents of ``inputs`` read with the corpus spec.
    """

    ALIASES: ClassVar[dict[str, str]] = {"num_threads": "threads"}

    corpus: str = ""
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
    threads: int = 0  # encoder threads for trie tokenizers (0 = the tokenizer's default)

    def __post_init__(self) -> None:
        from rwkv_data.config_checks import check_audit  # noqa: PLC0415

        super().__post_init__()  # the corpus spec's checks
        check_audit(self)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """``rwkv-data train``: RWKV-LM's recipe on a binidx prefix; defaults sized for a tiny model on a CPU."""

    data: str = ""  # binidx prefix P written by `rwkv-data shard` (P.bin, P.idx, P.meta.json)
    out_dir: str = "out/train"
    val_data: str = ""  # P_val prefix evaluated every eval_every steps ("" = no evaluation while training)
    vocab: str = ""  # tokenizer spec for evaluation ("world", a vocab file; "" = the one in data's P.meta.json)
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
class EvalConfig(CorpusSpec):
    """``rwkv-data evaluate``: bits per byte / per character per language with bootstrap intervals.

    It scores ``data`` (a P_val shard prefix, languages from its meta) or the corpus ``inputs`` (.txt: one
    document, language = file stem; jsonl, parquet: records read with the corpus spec).
    """

    ALIASES: ClassVar[dict[str, str]] = {"texts": "inputs"}

    checkpoint: str = ""
    vocab: str = ""  # a tokenizer spec ("world", a vocab file); "" = the one recorded in data's meta, else world
    data: str = ""  # P_val binidx prefix
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

        super().__post_init__()  # the corpus spec's checks
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
class RunConfig:
    """``rwkv-data run``: vocab -> shard -> train -> evaluate -> audit in one run folder (pipelines/run.py).

    ``corpus`` (a ``[corpus]`` section) is read by every stage that reads text; a stage section may still set
    its own corpus keys. Each stage keeps its own job config; the pipeline sets the paths between stages
    inside ``out_dir``. The stage defaults here are the demo's, sized for the bundled demo corpus (110 KB,
    38 languages) to finish in a few minutes on a 2-core CPU; a TOML file with ``[vocab]``, ``[shard]``,
    ``[train]``, ``[evaluate]`` and ``[audit]`` sections overrides them (examples/demo.toml).
    """

    ALIASES: ClassVar[dict[str, str]] = {"out": "out_dir"}

    out_dir: str = ""  # run folder ("" = runs/demo, or runs/<config file stem> with a config file)
    skip: tuple[str, ...] = ()  # stages not to run (their finished outputs, if any, are still used)
    redo: tuple[str, ...] = ()  # stages to run again although finished
    threads: int = 0  # torch CPU threads (0 = torch's default, or 1 when the load average >= the cores)
    corpus: CorpusSpec = CorpusSpec()  # inputs empty = the demo corpus
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

    def __post_init__(self) -> None:
        for option in ("skip", "redo"):
            bad = [s for s in getattr(self, option) if s not in STAGES]
            if bad:
                raise ConfigError(f"{option}: unknown stage(s) {bad}; the stages are {', '.join(STAGES)}")
        check_threads(self.threads)

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
