"""`recgen registry ls|show|promote|rollback` — inspect and steer the model registry."""
from __future__ import annotations

import json


def _registry(args):
    from pipelines.cli import artifacts_root
    from pipelines.modelreg import ModelRegistry

    return ModelRegistry(artifacts_root(args), args.model)


def format_table(reg) -> str:
    """The registry as a table: one line per version, '*' marks the champion."""
    champ = reg.state().get("champion")
    versions = reg.versions()
    if not versions:
        return f"registry {reg.dir}: no versions yet"
    have = {k for v in versions for k in v.metrics}
    keys = [k for k in ("ndcg@10", "hr@10", "mrr") if k in have] or sorted(have)[:3]
    head = f"{'':1} {'ver':>3}  {'created':<20} {'data':<24} " + " ".join(f"{k:>10}" for k in keys) + "  decision"
    lines = [head]
    for v in versions:
        mark = "*" if v.version == champ else " "
        data = str(v.data.get("watermark", ""))[:24]
        vals = " ".join(f"{v.metrics.get(k, float('nan')):>10.4f}" for k in keys)
        dec = v.decision or {}
        verdict = ("promoted" if dec.get("promoted") else "kept champion") if dec else "undecided"
        lines.append(f"{mark} {v.version:>3}  {v.created_at:<20} {data:<24} {vals}  {verdict}: {dec.get('reason', '')}")
    lines.append(f"(* = champion; registry {reg.dir})")
    return "\n".join(lines)


def cmd_registry(args) -> int:
    reg = _registry(args)
    if args.action == "ls":
        print(format_table(reg))
    elif args.action == "show":
        v = reg.champion() if args.version is None else reg.get(args.version)
        if v is None:
            print(f"registry {reg.dir}: no champion yet")
            return 1
        out = v.to_json()
        out["is_champion"] = reg.state().get("champion") == v.version
        print(json.dumps(out, indent=2))
    elif args.action == "promote":
        v = reg.promote(args.version, reason=args.reason or "manual promotion")
        print(f"{reg.model}: version {v.version} is now the champion")
    elif args.action == "rollback":
        v = reg.rollback(args.to, reason=args.reason or "manual rollback")
        print(f"{reg.model}: rolled back; version {v.version} is now the champion")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("registry", help="model registry: ls, show, promote, rollback")
    sub = p.add_subparsers(dest="action", required=True)

    def common(q):
        q.add_argument("--artifacts", help="artifact root (default: $RECGEN_ARTIFACTS or ./artifacts)")
        q.add_argument("--model", default="pcrec", help="registered model name (default: pcrec)")
        q.set_defaults(func=cmd_registry)

    common(sub.add_parser("ls", help="list versions with metrics and promotion decisions"))
    q = sub.add_parser("show", help="print one version (default: the champion) as JSON")
    q.add_argument("version", nargs="?", type=int)
    common(q)
    q = sub.add_parser("promote", help="make a version the champion")
    q.add_argument("version", type=int)
    q.add_argument("--reason")
    common(q)
    q = sub.add_parser("rollback", help="return to the previous champion (or --to VERSION)")
    q.add_argument("--to", type=int)
    q.add_argument("--reason")
    common(q)
