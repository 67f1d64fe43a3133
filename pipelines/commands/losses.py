"""`recgen losses plot [--out FILE]`: a figure of the margin-based losses and their derivatives."""
from __future__ import annotations


def cmd_losses_plot(args) -> int:
    from components.losses.plot import plot_losses

    path = plot_losses(args.out, v_min=args.v_min, v_max=args.v_max)
    print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("losses", help="the margin-based loss family")
    sub = p.add_subparsers(dest="action", required=True)
    q = sub.add_parser("plot", help="plot the eleven losses and their derivatives")
    q.add_argument("--out", default="margin_losses.png", help="output PNG (default: margin_losses.png)")
    q.add_argument("--v-min", type=float, default=-2.0)
    q.add_argument("--v-max", type=float, default=3.0)
    q.set_defaults(func=cmd_losses_plot)
