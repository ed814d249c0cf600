"""Small helpers shared by the churnguard notebooks.

They find the `churnguard` binary, pick a scratch directory, run the CLI and
build the small generated fixtures (event tables, feature tables) once per
scratch directory, so the three notebooks can share them.

Environment:
  CHURNGUARD_BIN        the churnguard binary (default: /tmp/cg-bin/churnguard
                        if present, else `churnguard` on PATH)
  CHURNGUARD_WORKDIR    scratch directory (default: a new temporary directory)
  CHURNGUARD_NB_CUSTOMERS, CHURNGUARD_NB_SEED
                        size and seed of the generated company (2000, 7)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CUSTOMERS = int(os.environ.get("CHURNGUARD_NB_CUSTOMERS", "2000"))
SEED = int(os.environ.get("CHURNGUARD_NB_SEED", "7"))
MONTHS = 24
START = "2023-01-01"

_workdir: Path | None = None


class Ran(subprocess.CompletedProcess):
    """A finished churnguard command (`.stdout`, `.stderr`, `.returncode`), shown briefly."""

    def __repr__(self) -> str:
        return f"<churnguard {self.args[1] if len(self.args) > 1 else ''}: exit {self.returncode}>"


def binary() -> str:
    """Path of the churnguard binary."""
    env = os.environ.get("CHURNGUARD_BIN")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"CHURNGUARD_BIN={env} is not a file")
        return str(p.resolve())
    default = Path("/tmp/cg-bin/churnguard")
    if default.is_file():
        return str(default)
    found = shutil.which("churnguard")
    if found:
        return found
    raise FileNotFoundError(
        "no churnguard binary: set CHURNGUARD_BIN, or put churnguard on PATH "
        "(cargo build --release gives target/release/churnguard)"
    )


def workdir() -> Path:
    """The scratch directory (created if absent); the same one for the whole kernel."""
    global _workdir
    if _workdir is None:
        env = os.environ.get("CHURNGUARD_WORKDIR")
        if env:
            _workdir = Path(env).expanduser().resolve()
            _workdir.mkdir(parents=True, exist_ok=True)
        else:
            _workdir = Path(tempfile.mkdtemp(prefix="churnguard-nb-"))
    return _workdir


def run(*args, quiet: bool = False, tail: int = 25) -> Ran:
    """Run `churnguard ARGS...`; print the command and the last lines of its output.

    Raises RuntimeError with the command's stderr when it fails.
    """
    cmd = [binary(), *[str(a) for a in args]]
    shown = "churnguard " + " ".join(str(a) for a in args)
    # A command without --store (training records itself in the store)
    # uses the scratch directory's store, never one beside the notebooks.
    env = dict(os.environ)
    env.setdefault("CHURNGUARD_DATABASE_URL", f"sqlite://{workdir() / 'churnguard.db'}")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    p = Ran(done.args, done.returncode, done.stdout, done.stderr)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(
            f"`{shown}` failed with exit code {p.returncode}\n"
            f"--- stdout ---\n{p.stdout[-4000:]}\n--- stderr ---\n{p.stderr[-4000:]}"
        )
    if not quiet:
        print(f"$ {shown}   ({dt:.2f} s)")
        out = (p.stdout + p.stderr).rstrip("\n").splitlines()
        if len(out) > tail:
            print(f"  [... {len(out) - tail} lines ...]")
            out = out[-tail:]
        for line in out:
            print("  " + line)
    return p


def _once(target: Path, build) -> Path:
    """Build `target` (a directory) with `build(tmp_dir)` unless a finished one exists."""
    done = target / ".complete"
    if done.exists():
        return target
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def company(customers: int = CUSTOMERS, seed: int = SEED) -> Path:
    """Directory of a generated company's event tables (Parquet), built once per workdir."""
    target = workdir() / f"company-c{customers}-s{seed}"
    return _once(
        target,
        lambda tmp: run(
            "generate", "--customers", customers, "--months", MONTHS,
            "--seed", seed, "--start", START, "--out", tmp,
        ),
    )


def features(data: Path, *extra: str, name: str = "features") -> Path:
    """A feature table of `data` built with `churnguard features --data DATA EXTRA...`, once.

    Returns the Parquet file; its column documentation is `<file>.schema.json`.
    """
    key = re.sub(r"[^A-Za-z0-9]+", "_", " ".join(extra)).strip("_") or "default"
    target = Path(data).parent / f"{Path(data).name}-{name}-{key}"

    def build(tmp: Path) -> None:
        run("features", "--data", data, *extra, "--out", tmp / "features.parquet")

    return _once(target, build) / "features.parquet"


def data_end(data: Path) -> str:
    """Last day the generated data covers (START + MONTHS months - 1 day), as YYYY-MM-DD."""
    import datetime as dt

    y, m, d = map(int, START.split("-"))
    months = (y * 12 + m - 1) + MONTHS
    first_after = dt.date(months // 12, months % 12 + 1, d)
    return (first_after - dt.timedelta(days=1)).isoformat()


def show(fig, name: str) -> None:
    """Save a figure under WORKDIR/figures/NAME.png, display it when inline, then close it."""
    import matplotlib
    import matplotlib.pyplot as plt

    out = workdir() / "figures" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    if "inline" in matplotlib.get_backend():
        from IPython.display import display

        display(fig)
    plt.close(fig)
