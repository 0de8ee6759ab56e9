"""`fewlabels demo`: the lecture in one command, ending in one HTML page that links the runs.

Each part (`gan`, `diffusion`, `rl`, with Go in `rl`, and `ssl`) returns report sections for its
runs; this module only assembles them, and no part imports it back."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fewlabels import files
from fewlabels.demo.diffusion import diffusion_part
from fewlabels.demo.gan import adversarial_part, digits_biggan_part, digits_gan_part, digits_progan_part
from fewlabels.demo.rl import deep_rl_part, go_part, gridworld_part
from fewlabels.demo.ssl import few_labels_part
from fewlabels.report import page


def demo(out: str = "runs/demo", quick: bool = False) -> str:
    root = Path(out)
    files.make_dir(root, "demo folder", "give --out a folder you can write to")
    t0 = time.perf_counter()
    sections = adversarial_part(root, quick)
    sections += digits_gan_part(root, quick)
    sections += digits_progan_part(root, quick)
    sections += digits_biggan_part(root, quick)
    sections += diffusion_part(root, quick)
    sections += gridworld_part(root, quick)
    sections += deep_rl_part(root, quick)
    sections += go_part(root, quick)
    sections += few_labels_part(root, quick)
    index = root / "index.html"
    files.write_text_atomic(index, page("fewlabels demo: the lecture in one command", sections,
                                        subtitle=f"made in {time.perf_counter() - t0:.0f} s on the CPU"), "demo page")
    return json.dumps({"index": str(index), "seconds": round(time.perf_counter() - t0, 1)})
