"""Scale-out: the fan-out stages on 1 node vs 2 loopback nodes, in the same run.

Two real `ray start` clusters on 127.0.0.1 (``tests/cluster/local_cluster.py``), one after the
other, with the same CPUs in total: **1 node** = a head with ``--cpus``; **2 nodes** = a head
and a worker node splitting them. On each, `recgen run --address <head>` runs

* pcrec on the synthetic generator (``data.recipe=synthetic``, ``--interactions`` rows):
  ``sample`` (all source nodes as queries, one sampled epoch) and one ``pretrain`` epoch
  (MoCo, one Ray Train worker);
* video ``flow`` on ``--clips`` rendered motion clips (DIS flow at 36x36).

The stages before them (ingest, kcore, split, graph; the video ingest, which renders the clips)
run once, in a setup run on the 1-node cluster, and are cache hits afterwards; the measured
stages run with ``--force`` on both clusters, into the same artifact root. Their outputs are
compared (same fingerprint, same bytes of every table part and flow file).

Printed per stage and cluster: wall time (run record), rows, rows/s, and the 2-node / 1-node
throughput ratio; then the peak RSS of each process role (a psutil poll every 0.2 s of every
process of the cluster and of the driver; a role is the process title at its peak, e.g.
``ray::sample`` = a shard task of sample, ``ray::pcrec.sample`` = the stage's own task), and
for the setup run the k-core stage's peak RSS and its input rows per GiB.

On one machine the 2-node cluster has no more cores than the 1-node one: the ratio shows the
overhead of spreading (a second raylet and object store, remote scheduling, cross-node object
transfers), not a speed-up.

    python benchmarks/bench_scale.py [--interactions 200000] [--clips 600] [--cpus 2]
                                     [--skip-pcrec] [--skip-video] [--keep DIR]

The issue's 20M interactions (``--interactions 20000000``) need about 3 GB for kcore and a
sampling time proportional to the source nodes; the defaults fit a loaded 2-core machine in a
few minutes per cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402  (a Ray dependency)

from tests.cluster.local_cluster import BIN, LoopbackCluster  # noqa: E402

GiB = 2**30


class PeakRSS(threading.Thread):
    """Peak RSS per process (pid -> (peak bytes, title at the peak)) of some process trees."""

    def __init__(self, roots: list[int], every_s: float = 0.2):
        super().__init__(daemon=True)
        self.roots, self.every_s = list(roots), every_s
        self.peak: dict[int, tuple[int, str]] = {}
        self._halt = threading.Event()

    def add_root(self, pid: int) -> None:
        self.roots.append(pid)

    def run(self) -> None:
        while not self._halt.is_set():
            procs = []
            for r in list(self.roots):
                try:
                    p = psutil.Process(r)
                    procs += [p, *p.children(recursive=True)]
                except psutil.Error:
                    continue
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    if rss > self.peak.get(p.pid, (0, ""))[0]:
                        self.peak[p.pid] = (rss, title(p))
                except psutil.Error:
                    continue
            self._halt.wait(self.every_s)

    def stop(self) -> dict[int, tuple[int, str]]:
        self._halt.set()
        self.join()
        return self.peak


def title(p: psutil.Process) -> str:
    cmd = p.cmdline()
    if cmd and cmd[0].startswith("ray::"):
        return cmd[0].split()[0]
    if any("recgen" in c and "run" in cmd for c in cmd[:2]):
        return "driver (recgen run)"
    name = p.name()
    return "ray system (" + name + ")" if name in ("raylet", "gcs_server") else name


def roles(peak: dict[int, tuple[int, str]]) -> dict[str, tuple[int, int]]:
    """title -> (max peak RSS over its processes, number of processes)."""
    out: dict[str, tuple[int, int]] = {}
    for rss, t in peak.values():
        m, n = out.get(t, (0, 0))
        out[t] = (max(m, rss), n + 1)
    return out


def recgen(cluster: LoopbackCluster, mon: PeakRSS, pipeline: str, root: Path, sets: list[str],
           until: str, force: str | None = None) -> dict:
    argv = [str(BIN / "recgen"), "run", pipeline, "--until", until, "--artifacts", str(root),
            "--address", cluster.gcs_address]
    for s in sets:
        argv += ["--set", s]
    if force:
        argv += ["--force", force]
    env = dict(cluster.env, TQDM_DISABLE="1")
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    mon.add_root(p.pid)
    out, _ = p.communicate(timeout=7200)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out[-4000:]}")
    runs = sorted((root / pipeline / "runs").glob("*.json"), key=lambda f: f.stat().st_mtime)
    return json.loads(runs[-1].read_text())


def manifest(record: dict, stage: str) -> dict:
    return json.loads((Path(record["stages"][stage]["dir"]) / "_manifest.json").read_text())


def snapshot(record: dict, stage: str) -> dict[str, bytes]:
    d = Path(record["stages"][stage]["dir"])
    m = manifest(record, stage)
    return {f: (d / f).read_bytes() for f in m["files"]}


def pcrec_sets(n: int) -> list[str]:
    return ["data.recipe=synthetic", f"data.synthetic.n_interactions={n}",
            f"data.synthetic.n_users={max(n // 12, 100)}",
            f"data.synthetic.n_items_source={max(n // 360, 50)}",
            f"data.synthetic.n_items_target={max(n // 720, 50)}",
            "kcore.k_source=5", "kcore.k_target=5",
            "sample.queries_per_epoch=null", "sample.epochs=1",
            "pretrain.epochs=1", "pretrain.trainer.num_workers=1"]


def video_sets(clips: int) -> list[str]:
    per_class = max(clips // 12, 2)
    val = max(per_class // 5, 1)
    return ["data.source=motion", f"data.motion.train_per_class={per_class - val}",
            f"data.motion.val_per_class={val}", "data.motion.size=48", "data.motion.num_frames=16",
            "decode.resize=36", "flow.method=dis"]


KCORE_CHILD = r"""
import os, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from components.data.ingest import index_ids
from components.graph.kcore import kcore_by_domain
path, k = {path!r}, {k}
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss()
t0 = time.process_time()
table = pq.read_table(path)                                   # what run_kcore does, without Ray
mask, _ = kcore_by_domain(table.column("domain").to_numpy(zero_copy_only=False), table.column("uid").to_numpy(),
                          table.column("iid").to_numpy(), {{"source": (k, k), "target": (k, k)}})
inter, users, items = index_ids(table.filter(pa.array(mask)))
pq.write_table(inter, path + ".out")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(table.num_rows, inter.num_rows, base, peak, time.process_time() - t0)
"""


def kcore_memory(rows: int, k: int = 5) -> dict:
    """The k-core stage body (read, k-core per domain, filter, re-index, write) in a fresh
    process on ``rows`` synthetic interactions: peak RSS above the process after its imports."""
    from components.data.ingest import index_ids
    from components.data.synthetic import generate
    import pyarrow.parquet as pq

    d = tempfile.mkdtemp(prefix="recgen-kcore-mem-")
    try:
        path = os.path.join(d, "interactions.parquet")
        inter, _u, _i = index_ids(generate(rows, n_users=max(rows // 12, 100), n_items_source=max(rows // 360, 50),
                                           n_items_target=max(rows // 720, 50), seed=0))
        pq.write_table(inter, path)
        del inter
        out = subprocess.run([sys.executable, "-c", KCORE_CHILD.format(root=str(ROOT), path=path, k=k)],
                             capture_output=True, text=True, check=True).stdout.split()
        n_in, n_out, base, peak, cpu = int(out[0]), int(out[1]), int(out[2]), int(out[3]), float(out[4])
        return {"rows": n_in, "kept": n_out, "base": base, "peak": peak, "cpu_s": cpu,
                "rows_per_gib": n_in / max(peak - base, 1) * GiB}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interactions", type=int, default=200_000, help="synthetic pcrec rows (issue: 20M)")
    ap.add_argument("--clips", type=int, default=600, help="rendered motion clips for video flow")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the cluster (1 node: all; 2 nodes: split)")
    ap.add_argument("--skip-pcrec", action="store_true")
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--keep", default=None, help="artifact root to keep (default: a temp dir, removed)")
    ap.add_argument("--kcore-rows", type=int, nargs="*", default=[1_000_000, 4_000_000],
                    help="sizes of the k-core memory measurement (no Ray); none: skip it")
    ap.add_argument("--kcore-only", action="store_true", help="only the k-core memory measurement")
    a = ap.parse_args()
    if a.kcore_rows:
        print("## k-core stage body in one process (memory bound): peak RSS above the imports\n")
        print("| input rows | kept | peak RSS - base (MiB) | rows per GiB | CPU s |")
        print("|---|---|---|---|---|")
        for n in a.kcore_rows:
            r = kcore_memory(n)
            print(f"| {r['rows']:,} | {r['kept']:,} | {(r['peak'] - r['base']) / 2**20:.0f} | "
                  f"{r['rows_per_gib']:,.0f} | {r['cpu_s']:.1f} |", flush=True)
        print()
    if a.kcore_only:
        return 0
    root = Path(a.keep or tempfile.mkdtemp(prefix="recgen-bench-scale-"))
    jobs = []
    if not a.skip_pcrec:
        jobs.append(("pcrec", pcrec_sets(a.interactions), "graph", "pretrain", "sample", ["sample", "pretrain"]))
    if not a.skip_video:
        jobs.append(("video", video_sets(a.clips), "ingest", "flow", "flow", ["flow"]))
    topologies = [("1 node", a.cpus, 0), ("2 nodes", max(1, a.cpus // 2), max(1, a.cpus - a.cpus // 2))]
    results: dict = {}
    setup_peaks: dict = {}
    print(f"bench_scale: {a.interactions} synthetic interactions, {a.clips} clips, {a.cpus} CPUs; root {root}",
          flush=True)
    try:
        for ti, (name, head, worker) in enumerate(topologies):
            c = LoopbackCluster(head_cpus=head, worker_cpus=worker)
            c.start()
            try:
                for pipeline, sets, setup_until, until, force, stages in jobs:
                    if ti == 0:   # upstream stages once (cache hits later)
                        mon = PeakRSS([p.pid for p in c.procs])
                        mon.start()
                        t0 = time.time()
                        rec = recgen(c, mon, pipeline, root, sets, setup_until)
                        kc = manifest(rec, "kcore")["stats"] if pipeline == "pcrec" else {}
                        setup_peaks[pipeline] = (roles(mon.stop()), kc, time.time() - t0)
                        print(f"[{name}] {pipeline} setup (..{setup_until}) done in {time.time() - t0:.0f}s",
                              flush=True)
                    mon = PeakRSS([p.pid for p in c.procs])
                    mon.start()
                    rec = recgen(c, mon, pipeline, root, sets, until, force=force)
                    peaks = roles(mon.stop())
                    outs = {s: snapshot(rec, s) for s in (force,)}
                    mans = {s: manifest(rec, s) for s in stages}
                    results[(pipeline, name)] = (rec, peaks, outs, mans)
                    print(f"[{name}] {pipeline}: " + ", ".join(
                        f"{s} {rec['stages'][s]['wall_time_s']:.1f}s" for s in stages), flush=True)
            finally:
                c.stop()
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    report(a, jobs, topologies, results, setup_peaks)
    return 0


def stage_rows(stage: str, mans: dict) -> tuple[int, str]:
    """Rows a stage processed: sample views, pretrain pairs (one epoch = half the views of the
    one sampled epoch), flow clips."""
    if stage == "sample":
        return int(mans["sample"]["stats"]["views"]), "views"
    if stage == "pretrain":
        return int(mans["sample"]["stats"]["views"]) // 2, "pairs"
    if stage == "flow":
        return int(mans["flow"]["stats"]["clips"]), "clips"
    return int(next(iter(mans[stage]["tables"].values()))["rows"]), "rows"


def report(a, jobs, topologies, results, setup_peaks) -> None:
    names = [t[0] for t in topologies]
    print("\n## Stages (wall time from the run record; rows/s = rows / wall time)\n")
    print(f"| stage | rows | {' | '.join(f'{n}: s | {n}: rows/s' for n in names)} | 2 nodes / 1 node (rows/s) | shards, nodes used | same output |")
    print("|---" * (4 + 2 * len(names)) + "|")
    for pipeline, _sets, _su, _until, force, stages in jobs:
        for s in stages:
            cells, rates, fan = [], [], []
            rows = unit = None
            for n in names:
                rec, _peaks, _outs, mans = results[(pipeline, n)]
                m = mans[s]
                rows, unit = stage_rows(s, mans)
                w = rec["stages"][s]["wall_time_s"]
                rates.append(rows / w if w else float("nan"))
                cells += [f"{w:.1f}", f"{rates[-1]:.1f}"]
                f = m.get("fanout", {}).get(s)
                fan.append(f"{f['num_shards']}, {len(f['nodes'])}" if f else "-")
            same = "-"
            if s == force:
                o1, o2 = (results[(pipeline, n)][2][s] for n in names)
                f1, f2 = (results[(pipeline, n)][3][s]["fingerprint"] for n in names)
                same = "yes" if (o1 == o2 and f1 == f2) else "NO"
            print(f"| {pipeline}.{s} | {rows} {unit} | {' | '.join(cells)} | {rates[1] / rates[0]:.2f}x | "
                  f"{' / '.join(fan)} | {same} |")
    print("\n## Peak RSS per process role (MiB; max over the processes of that role, count)\n")
    for pipeline, *_ in jobs:
        allroles = sorted({r for n in names for r in results[(pipeline, n)][1]})
        print(f"| {pipeline} role | " + " | ".join(names) + " |")
        print("|---" * (1 + len(names)) + "|")
        for r in allroles:
            cells = []
            for n in names:
                v = results[(pipeline, n)][1].get(r)
                cells.append(f"{v[0] / 2**20:.0f} ({v[1]})" if v else "-")
            print(f"| {r} | " + " | ".join(cells) + " |")
        print()
    if "pcrec" in setup_peaks:
        peaks, kstats, secs = setup_peaks["pcrec"]
        rows_in = int(kstats["rows_in"])
        kpeak = peaks.get("ray::pcrec.kcore", (0, 0))[0]
        idle = min((v[0] for k, v in peaks.items() if k == "ray::IDLE"), default=0)
        print(f"k-core (setup run, 1 node): {rows_in} input rows, stage task peak RSS {kpeak / 2**20:.0f} MiB "
              f"(an idle worker: {idle / 2**20:.0f} MiB): "
              + (f"{rows_in / max(kpeak - idle, 1) * GiB:,.0f} rows per GiB above an idle worker"
                 if kpeak > idle else "below the poll's resolution"))
    if any(j[0] == "pcrec" for j in jobs):
        for n in names:
            st = results[("pcrec", n)][3]["pretrain"]["stats"]
            print(f"pretrain training loop ({n}): {st.get('pairs_per_s') or float('nan'):.1f} pairs/s "
                  "(the stage's wall time also embeds every source node)")
    print("\nOne machine: both clusters share the same cores, so the 2-node/1-node ratio is the overhead "
          "of spreading shards over two raylets, not a speed-up.")


if __name__ == "__main__":
    raise SystemExit(main())
