"""Copy the figures of a reproduction into ``docs/figures`` for the README, small.

``python -m paper_figures.docs [--output DIR] [--docs DIR] [--max-kb 300]``: each PNG of
``DIR`` (default paper_figures/output) is downscaled (at most 1600 px wide) and reduced to
a 256-color palette until it is below the size limit.
"""

from __future__ import annotations

import argparse
import io
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

    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="figures to copy (default "
                                                       "paper_figures/output)")
    parser.add_argument("--docs", default=str(root / "docs" / "figures"),
                        help="destination (default docs/figures)")
    parser.add_argument("--max-kb", type=int, default=300)
    args = parser.parse_args(argv)
    source = Path(args.output) if args.output else default_output()
    for name in FIGURES:
        size = shrink(source / f"{name}.png", Path(args.docs) / f"{name}.png", args.max_kb)
        print(f"{Path(args.docs) / name}.png: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
