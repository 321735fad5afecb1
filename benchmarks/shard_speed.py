"""Speed and memory of ``rwkv-data shard`` against a make_data.py-style baseline, all from one run.

Input: ../shared/corpus/mono/*.jsonl.zst (beside the repository root). Rows:

* tokenizer 1 thread: our native tokenizer's own ``encode_batch(num_threads=1)`` on every document, already
  decoded and in memory (the ceiling for one worker).
* shard, 1 / 2 workers: the whole job end to end in a fresh subprocess (imports, vocab load from the vocab
  cache, which this script fills first, reading, decompression, JSON, tokenizing, parts, validation split,
  shuffle, merge, hashes, meta), ``--runs`` times each, 1 and 2 workers alternating; the fastest run is
  reported, as for the tokenizer row (the same statistic on both sides of each ratio; every wall time is
  printed). Peak RSS, from one more run with a sampler: the largest single process (getrusage of the waited
  children) and the sampled peak sum over the process tree (``/proc``, every 20 ms).
* shard x10, 1 and 2 workers: the corpus repeated ``--repeat`` times (symlinked copies, so 10x the documents
  and tokens): ``--runs-large`` timed runs each, alternating, fastest kept (the scaling where start-up counts
  less), and one more 2-worker run with the sampler for the RSS-does-not-grow check.
* where the time goes: each fastest run split into start-up (interpreter and imports, timed from the spawn),
  the job's own two stages (its log line "tokenized in .., merged in .."), the rest of ``run`` (vocab, inputs,
  markers, clean-up) and the interpreter's exit; only the parts stage runs in the workers.
* baseline: RWKV-LM make_data.py's loop (json.loads per line, rwkv's ``TRIE_TOKENIZER.encode``, append 0,
  numpy uint16 item writes, one process) on every ``--subset``-th document, since it runs at ~2 MB/s.

MB/s = UTF-8 bytes of document text / wall time. The machine is shared: the load average before and after is
printed with the table.

Run: python benchmarks/shard_speed.py [--runs 5] [--repeat 10] [--runs-large 2] [--subset 40]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tokenizer_speed import parallel_capacity  # noqa: E402 - a sibling script (benchmarks/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "mono"

JOB = """
import json, logging, sys, time
from rwkv_data.config import ShardConfig
from rwkv_data.pipelines.shard.job import run
t_imported = time.time()
stages = {}
class Stages(logging.Handler):  # the job's own "tokenized in %.2f s, merged in %.2f s" line
    def emit(self, record):
        if record.msg.startswith("tokenized in"):
            stages["parts"], stages["merge"] = record.args
log = logging.getLogger("rwkv_data.pipelines.shard.job")
log.setLevel(logging.INFO)
log.addHandler(Stages())
m = run(ShardConfig(inputs=tuple(sys.argv[3:]), output=sys.argv[1], workers=int(sys.argv[2]), progress=False))
print(json.dumps({"bytes": m["train"]["input"]["bytes"], "docs": m["train"]["input"]["documents"],
                  "tokens": m["train"]["input"]["tokens"], "t_imported": t_imported, "t_done": time.time(),
                  **stages}))
"""
STAGES = (("start", "start-up: interpreter, imports"), ("setup", "vocab, inputs, markers, clean-up"),
          ("parts", "parts: read, tokenize, write (workers)"), ("merge", "merge: split, shuffle, copy, hashes"),
          ("exit", "interpreter exit"))


def _tree_rss_kb(root: int, hwm: dict[int, int]) -> int:
    """Sum of VmRSS over ``root`` and its descendants (from /proc); records each one's VmHWM in ``hwm``."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", encoding="utf-8") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as f:
                fields = {ln.split(":")[0]: ln.split()[1] for ln in f if ln.startswith(("VmRSS:", "VmHWM:"))}
        except OSError:
            continue
        total += int(fields.get("VmRSS", 0))
        hwm[pid] = max(hwm.get(pid, 0), int(fields.get("VmHWM", 0)))
    return total


def run_job(inputs: list[str], workers: int, out: Path, sample_rss: bool = True) -> dict[str, float]:
    """One job in a fresh subprocess: wall time, text bytes, peak RSS (single process and tree sum; the tree sum
    needs a sampler, ~1.3 ms of CPU every 20 ms, so timed runs leave it off: ``sample_rss=False``). The output
    folder ``out.parent`` is deleted afterwards."""
    t0, t_popen = time.perf_counter(), time.time()
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(out), str(workers), *inputs],
                            stdout=subprocess.PIPE, stderr=err, text=True)
    peak = [0]
    hwm: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid, hwm))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    if sample_rss:
        th.start()
    stdout = proc.stdout.read() if proc.stdout else ""  # a few hundred bytes, read before the exit
    _, status, usage = os.wait4(proc.pid, 0)  # CPU time of this child and the workers it waited for
    wall, t_end = time.perf_counter() - t0, time.time()
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if sample_rss:
        th.join()
    if proc.returncode != 0:
        err.seek(0)
        raise SystemExit(f"shard job failed:\n{err.read()}")
    res = json.loads(stdout.strip().splitlines()[-1])
    shutil.rmtree(out.parent)  # each run starts from the same state: outputs do not pile up in the page cache
    stages = {"start": res["t_imported"] - t_popen, "exit": t_end - res["t_done"]}
    if "parts" in res:
        stages.update(parts=res["parts"], merge=res["merge"],
                      setup=res["t_done"] - res["t_imported"] - res["parts"] - res["merge"])
    return {"wall": wall, "bytes": res["bytes"], "tokens": res["tokens"], "cpu": usage.ru_utime + usage.ru_stime,
            "rss_max_mb": max(hwm.values(), default=0) / 1024, "rss_tree_mb": peak[0] / 1024, "stages": stages}


def tokenizer_speed(texts: list[str], runs: int) -> tuple[float, float]:
    """(MB/s, MB per CPU second) of our tokenizer alone, one thread, documents in memory (best of ``runs``)."""
    from rwkv_data.tokenizer import TrieTokenizer

    tok = TrieTokenizer.world()
    if tok.impl != "native":
        print(f"warning: tokenizer impl is {tok.impl}, not native", file=sys.stderr)
    nbytes = sum(len(t.encode()) for t in texts)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        tok.encode_batch(texts, num_threads=1, as_array=True)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return nbytes / best / 1e6, nbytes / best_cpu / 1e6


def packed_speed(datas: list[bytes], runs: int) -> tuple[float, float]:
    """The same for ``encode_packed`` on UTF-8 bytes (the shard job's call): shown for reference, the targets use
    the row above (the tokenizer's published str -> numpy speed, as benchmarks/tokenizer_speed.py measures)."""
    from rwkv_data.tokenizer import TrieTokenizer

    tok = TrieTokenizer.world()
    nbytes = sum(map(len, datas))
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        tok.encode_packed(datas, num_threads=1)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return nbytes / best / 1e6, nbytes / best_cpu / 1e6


def baseline_speed(files: list[Path], subset: int, out: Path) -> tuple[float, float, int]:
    """make_data.py's loop on every ``subset``-th jsonl line: (MB/s, MB per CPU second, text bytes timed)."""
    import numpy as np
    import zstandard
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    from rwkv_data.tokenizer import world_vocab_path

    lines = []
    for f in files:
        with open(f, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        lines += data.decode("utf-8").splitlines()
    lines = [ln for ln in lines[::subset] if ln.strip()]
    tok = TRIE_TOKENIZER(str(world_vocab_path()))
    nbytes = 0
    t0, c0 = time.perf_counter(), time.process_time()
    sizes = []
    with open(out, "wb") as bin_f:
        for ln in lines:
            text = json.loads(ln)["text"]
            nbytes += len(text.encode())
            ids = tok.encode(text) + [0]  # make_data: "[0] = end_of_doc for rwkv tokenizer"
            bin_f.write(np.array(ids, dtype=np.uint16).tobytes())
            sizes.append(len(ids))
    np.array(sizes, dtype=np.int32).tofile(f"{out}.sizes")
    return nbytes / (time.perf_counter() - t0) / 1e6, nbytes / (time.process_time() - c0) / 1e6, nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of the jobs and the tokenizer (fastest kept)")
    ap.add_argument("--repeat", type=int, default=10, help="corpus copies for the large-input rows")
    ap.add_argument("--runs-large", type=int, default=2, help="timed runs of each large-input job (fastest kept)")
    ap.add_argument("--subset", type=int, default=40, help="baseline: every N-th document")
    args = ap.parse_args()
    files = sorted(CORPUS.glob("*.jsonl.zst"))
    if not files:
        raise SystemExit(f"no corpus at {CORPUS}")
    from rwkv_data.tokenizer import TrieTokenizer

    TrieTokenizer.world()  # parses World once and fills the vocab cache (a job's very first start pays ~0.2 s more)
    load0 = os.getloadavg()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        timed: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        capacity = []  # the machine's own 2-way parallel speed-up, between rounds (see tokenizer_speed.py)
        for i in range(args.runs):  # jobs first, while this process is still small; 1 and 2 workers alternate
            for w in (1, 2):
                timed[w].append(run_job([str(CORPUS)], w, tmpd / f"w{w}-{i}" / "P", sample_rss=False))
            capacity.append(parallel_capacity(2))
        for w, runs in timed.items():
            mem = run_job([str(CORPUS)], w, tmpd / f"w{w}-rss" / "P")  # one more run, with the RSS sampler
            r = min(runs, key=lambda x: x["wall"])
            rows[f"shard, {w} worker{'s' if w > 1 else ''}"] = {
                "mbps": r["bytes"] / r["wall"] / 1e6, "cpu_mbps": r["bytes"] / r["cpu"] / 1e6, "wall": r["wall"],
                "rss_max_mb": mem["rss_max_mb"], "rss_tree_mb": mem["rss_tree_mb"],
                "walls": [x["wall"] for x in runs], "stages": r["stages"]}
            text_mb = r["bytes"] / 1e6
        big = tmpd / "big"
        for i in range(args.repeat):
            (big / f"copy{i:02d}").mkdir(parents=True)
            for f in files:
                (big / f"copy{i:02d}" / f.name).symlink_to(f)
        large: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for i in range(args.runs_large):  # alternating, as above
            for w in (1, 2):
                large[w].append(run_job([str(big)], w, tmpd / f"x10-{w}-{i}" / "P", sample_rss=False))
        for w, runs in large.items():
            r = min(runs, key=lambda x: x["wall"])
            mem = run_job([str(big)], w, tmpd / f"x10-{w}-rss" / "P") if w == 2 else r
            rows[f"shard, {args.repeat}x input ({r['bytes'] / 1e6:.0f} MB), {w} worker{'s' if w > 1 else ''}"] = {
                "mbps": r["bytes"] / r["wall"] / 1e6, "cpu_mbps": r["bytes"] / r["cpu"] / 1e6, "wall": r["wall"],
                "walls": [x["wall"] for x in runs], "stages": r["stages"],
                **({"rss_max_mb": mem["rss_max_mb"], "rss_tree_mb": mem["rss_tree_mb"]} if w == 2 else {})}
        from rwkv_data.pipelines.corpus.readers import iter_documents

        texts = [d.text for d in iter_documents(files)]
        mbps, cpu_mbps = tokenizer_speed(texts, args.runs)
        rows["our tokenizer alone, 1 thread, text in memory"] = {"mbps": mbps, "cpu_mbps": cpu_mbps}
        mbps, cpu_mbps = packed_speed([t.encode() for t in texts], args.runs)
        rows["  (same, encode_packed on UTF-8 bytes, as the job)"] = {"mbps": mbps, "cpu_mbps": cpu_mbps}
        del texts
        mbps, cpu_mbps, nb = baseline_speed(files, args.subset, tmpd / "baseline.bin")
        rows[f"baseline make_data.py-style (1/{args.subset} subset, {nb / 1e6:.1f} MB)"] = {
            "mbps": mbps, "cpu_mbps": cpu_mbps}
    load1 = os.getloadavg()
    _report(rows, files, text_mb, load0[0], load1[0], capacity)


def _report(rows: dict[str, dict[str, float]], files: list[Path], text_mb: float, load0: float, load1: float,
            capacity: list[float]) -> None:
    print(f"\ncorpus: {CORPUS} ({len(files)} files, {text_mb:.1f} MB of document text); cores: {os.cpu_count()}; "
          f"load average before {load0:.1f}, after {load1:.1f}")
    base = next(v for k, v in rows.items() if k.startswith("baseline"))
    w1, w2 = rows["shard, 1 worker"], rows["shard, 2 workers"]
    tok1 = rows["our tokenizer alone, 1 thread, text in memory"]
    print(f"{'':<50} {'MB/s':>7} {'MB/CPU-s':>8} {'wall s':>7} {'RSS proc':>8} {'RSS tree':>8} {'x base':>7} "
          f"{'x 1 wkr':>7}")
    for name, v in rows.items():
        wall = f"{v['wall']:.2f}" if "wall" in v else "-"
        rss = f"{v['rss_max_mb']:.0f}" if "rss_max_mb" in v else "-"
        tree = f"{v['rss_tree_mb']:.0f}" if "rss_tree_mb" in v else "-"
        print(f"{name:<50} {v['mbps']:>7.2f} {v['cpu_mbps']:>8.2f} {wall:>7} {rss:>8} {tree:>8} "
              f"{v['mbps'] / base['mbps']:>7.1f} {v['mbps'] / w1['mbps']:>7.2f}")
    print("(MB/s: document text per wall second; MB/CPU-s: per CPU second of all processes; RSS in MB: peak of the "
          "largest process / peak sum over the process tree)")
    rss_peak = max(v.get("rss_tree_mb", 0) for v in rows.values())
    x10 = [v for k, v in rows.items() if "x input" in k]
    big = (x10[0], x10[1]) if len(x10) == 2 else None
    checks = [
        ("1 worker >= 50% of the tokenizer's 1-thread speed (wall)", w1["mbps"] / tok1["mbps"], 0.5),
        ("  same, per CPU second", w1["cpu_mbps"] / tok1["cpu_mbps"], 0.5),
        ("2 workers >= 1.7x 1 worker (wall)", w2["mbps"] / w1["mbps"], 1.7),
        *([("  same, on the 10x input", big[1]["mbps"] / big[0]["mbps"], 1.7)] if big else []),
        ("1 worker >= 10x baseline (wall)", w1["mbps"] / base["mbps"], 10.0),
        ("peak RSS (process tree) < 500 MB, incl. the large input", 500.0 / rss_peak, 1.0),
    ]
    for name, got, want in checks:
        print(f"{'PASS' if got >= want else 'MISS'}  {name}: {got:.2f} (target {want})")
    print(f"control: sha256 on 2 threads ran {statistics.median(capacity):.2f}x one thread between the rounds "
          f"({' / '.join(f'{c:.2f}' for c in capacity)}): the most any 2-way job can gain here")
    print("walls (s): " + "; ".join(f"{k}: {', '.join(f'{x:.2f}' for x in v['walls'])}"
                                   for k, v in rows.items() if "walls" in v))
    _report_stages({k: v for k, v in rows.items() if "stages" in v})


def _report_stages(rows: dict[str, dict[str, Any]]) -> None:
    """Where each fastest run's wall time went, and how each stage scaled from 1 to 2 workers (Amdahl: only the
    parts stage runs in the worker processes)."""
    pairs = [(k1, k2) for k1 in rows for k2 in rows if "1 worker" in k1 and k2 == k1.replace("1 worker", "2 workers")]
    print("\nwhere the time goes (s), fastest run of each:")
    for k1, k2 in pairs:
        a, b = rows[k1]["stages"], rows[k2]["stages"]
        if "parts" not in a or "parts" not in b:
            continue
        print(f"  {k1.replace(', 1 worker', '')}: {'1 worker':>9} {'2 workers':>9} {'ratio':>6}")
        for key, label in STAGES:
            print(f"    {label:<44} {a[key]:>9.3f} {b[key]:>9.3f} {a[key] / max(b[key], 1e-9):>6.2f}")
        serial = sum(b[k] for k, _ in STAGES if k != "parts")
        print(f"    {'everything but the parts stage':<44} {sum(a[k] for k, _ in STAGES if k != 'parts'):>9.3f} "
              f"{serial:>9.3f}")
        ideal = (serial + a["parts"]) / (serial + a["parts"] / 2)
        print(f"    with that serial time, a perfect 2x parts stage gives {ideal:.2f}x overall")


if __name__ == "__main__":
    main()
