"""Copy the figures of a reproduction into ``docs/figures`` for the README, small.

``python -m paper_figures.docs [--output DIR] [--docs DIR] [--max-kb 300] [--any-mode]``:
each PNG of ``DIR`` (default paper_figures/output) is downscaled (at most 1600 px wide)
and reduced to a 256-color palette until it is below the size limit.

The README shows full-run figures, so only figures drawn by a full run (``stability
reproduce`` without ``--quick``; recorded in ``DIR/figures.json``) are copied: a quick or
smoke figure, or one of unknown origin, is refused unless ``--any-mode`` is given (e.g.
with ``--docs`` pointing somewhere else).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from paper_figures import FIGURES


def shrink(source: Path, target: Path, max_kb: int = 300, max_width: int = 1600) -> int:
    """Write a small copy of the PNG ``source`` to ``target``; returns its size in bytes."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    width = min(max_width, image.width)
    while True:
        height = round(image.height * width / image.width)
        small = image.resize((width, height), Image.LANCZOS).quantize(colors=256)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_kb * 1024 or width < 400:
            break
        width = int(width * 0.85)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return buffer.tell()


def main(argv=None) -> int:
    from experiments.run import default_output
    from paper_figures.style import FIGURE_MODES

    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="figures to copy (default "
                                                       "paper_figures/output)")
    parser.add_argument("--docs", default=str(root / "docs" / "figures"),
                        help="destination (default docs/figures)")
    parser.add_argument("--max-kb", type=int, default=300)
    parser.add_argument("--any-mode", action="store_true",
                        help="copy figures whatever run drew them (default: full runs only)")
    args = parser.parse_args(argv)
    source = Path(args.output) if args.output else default_output()
    try:
        modes = json.loads((source / FIGURE_MODES).read_text())
    except (OSError, ValueError):
        modes = {}
    missing = [n for n in FIGURES if not (source / f"{n}.png").is_file()]
    if missing:
        print(f"paper_figures.docs: error: {source} lacks {', '.join(missing)} (run `stability "
              "reproduce` first); nothing copied", file=sys.stderr)
        return 2
    if not args.any_mode:
        wrong = {n: modes.get(n, "unknown") for n in FIGURES if modes.get(n) != "full"}
        if wrong:
            listing = ", ".join(f"{n} ({m})" for n, m in wrong.items())
            print(f"paper_figures.docs: error: {args.docs} holds full-run figures, but these "
                  f"in {source} are not from a full run: {listing}; run `stability reproduce` "
                  "(full budgets) first, or pass --any-mode; nothing copied", file=sys.stderr)
            return 2
    for name in FIGURES:
        size = shrink(source / f"{name}.png", Path(args.docs) / f"{name}.png", args.max_kb)
        print(f"{Path(args.docs) / name}.png: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
