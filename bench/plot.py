#!/usr/bin/env python3
"""The benchmark plot for docs/benchmarks.md: every measured ratio next to
its target, from the result files the benchmarks write (bench/work/*.md).
Writes an SVG (no plotting library needed) and, with rsvg-convert (Debian
package librsvg2-bin), a PNG of it.

    bench/plot.py [--work DIR] [--out docs/img/benchmarks]

A ratio is "better" below its target for times, sizes and downloads, and
above it for throughputs; the bar is green when the target is met.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (file, regex for the value, label, target, True if higher is better[, divisor:
# the value is shown as value / divisor, a ratio to an absolute target])
METRICS = [
    ("bundle_create.md", r"time \*\*([0-9.]+)\*\*", "bundle: abota / rauc time", 1.0, False),
    ("install.md", r"abota/rauc \*\*([0-9.]+)\*\*", "install: abota / rauc time", 0.3, False),
    ("install.md", r"own format / floor \*\*([0-9.]+)\*\*", "install: own format / floor", 1.5,
     False),
    ("install.md", r"peak RSS \*\*([0-9.]+) MiB\*\*", "install: peak RSS / 8 MiB", 1.0,
     False, 8.0),
    ("resume.md", r"resumed / full: \*\*([0-9.]+)\*\*", "resume after 90% cut / full", 0.2,
     False),
    ("adaptive.md", r"downloads \*\*([0-9.]+)×\*\* the floor", "adaptive download / floor", 1.5,
     False),
    ("adaptive.md", r"reaches \*\*([0-9.]+)×\*\* the throughput",
     "streaming / local throughput", 0.8, True),
]


def read_metrics(work):
    out = []
    for name, rx, label, target, higher, *div in METRICS:
        path = os.path.join(work, name)
        if not os.path.exists(path):
            continue
        m = re.search(rx, open(path).read())
        if m:
            v = float(m.group(1)) / (div[0] if div else 1.0)
            out.append((label, round(v, 3), target, higher))
    return out


def svg(metrics):
    w, row, left, scale_w = 760, 34, 260, 440
    h = 60 + row * len(metrics)
    top = max(max(v, t) for _, v, t, _ in metrics) * 1.1
    x = lambda v: left + v / top * scale_w  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="13">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             '<text x="10" y="22" font-size="15" font-weight="bold">abota benchmarks: '
             'measured ratio (bar) and target (line)</text>']
    for i, (label, v, t, higher) in enumerate(metrics):
        y = 40 + i * row
        ok = v >= t if higher else v <= t
        colour = "#3a9d4a" if ok else "#d0452f"
        parts.append(f'<text x="10" y="{y + 17}">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{x(v) - left:.1f}" height="18" '
                     f'fill="{colour}"/>')
        parts.append(f'<line x1="{x(t):.1f}" y1="{y}" x2="{x(t):.1f}" y2="{y + 26}" '
                     'stroke="black" stroke-width="2"/>')
        parts.append(f'<text x="{x(max(v, t)) + 6:.1f}" y="{y + 17}">{v:g} '
                     f'({"≥" if higher else "≤"} {t:g}{" ✓" if ok else ""})</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs", "img",
                                                  "benchmarks"))
    a = ap.parse_args()
    metrics = read_metrics(a.work)
    if not metrics:
        print(f"plot: no benchmark results in {a.work}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".svg", "w") as f:
        f.write(svg(metrics))
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", a.out + ".png", a.out + ".svg"], check=True)
        print(f"plot: {a.out}.svg, {a.out}.png")
    else:
        print(f"plot: {a.out}.svg (no rsvg-convert: install librsvg2-bin for the PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
