"""Table printing and the process launcher shared by the benchmark scripts."""

from __future__ import annotations

import sys
from pathlib import Path

# The shipped configs: inside the package (the checkout's configs/ is a symlink to them, and a
# symlink may not travel, e.g. to a lent GPU machine).
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "fewlabels" / "configs"


def fmt(v, digits: int = 3) -> str:
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def launcher(processes: int) -> list[str]:
    """Python alone, or torchrun on this machine with `processes` ranks."""
    return [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    f"--nproc_per_node={processes}"]
