"""`recgen losses plot` writes a real PNG through the CLI."""
from __future__ import annotations

from pipelines.cli import main


def test_losses_plot_cli_writes_png(tmp_path):
    out = tmp_path / "fig" / "losses.png"
    assert main(["losses", "plot", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # eleven panels with curves, not an empty canvas
    assert not list(out.parent.glob(".*tmp*"))
