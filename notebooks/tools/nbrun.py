"""Check that notebooks are stripped, strip them, or execute them top to bottom.

    python notebooks/tools/nbrun.py check NOTEBOOK...    fail unless every notebook is stripped
    python notebooks/tools/nbrun.py strip NOTEBOOK...    remove outputs and execution counts in place
    python notebooks/tools/nbrun.py run --out DIR [--check-stripped] [--kernel NAME] [--timeout S] NOTEBOOK...
        execute each notebook with nbclient (working directory: the notebook's folder) and
        write the executed copy to DIR; the originals are never written. A failing cell
        fails its notebook (printing the cell and the error); the others still run; exit 1
        when any failed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat


def problems(nb) -> list[str]:
    """Why a notebook is not stripped (empty when it is)."""
    out = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            out.append(f"cell {i} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            out.append(f"cell {i} has execution_count {cell.execution_count}")
    for key in ("widgets", "execution"):
        if key in nb.metadata:
            out.append(f"notebook metadata has `{key}`")
    return out


def strip(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    for key in ("widgets", "execution"):
        nb.metadata.pop(key, None)


def cmd_check(paths: list[Path]) -> int:
    bad = 0
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        issues = problems(nb)
        if issues:
            bad += 1
            print(f"NOT STRIPPED: {p}: " + "; ".join(issues[:5]) +
                  (f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""), file=sys.stderr)
            print(f"  fix: python notebooks/tools/nbrun.py strip {p}", file=sys.stderr)
    if bad == 0:
        print(f"stripped: {len(paths)} notebook(s) have no outputs and no execution counts")
    return 1 if bad else 0


def cmd_strip(paths: list[Path]) -> int:
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        if problems(nb):
            strip(nb)
            nbformat.write(nb, p)
            print(f"stripped {p}")
    return 0


def cmd_run(paths: list[Path], out: Path, kernel: str | None, timeout: int) -> int:
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    out.mkdir(parents=True, exist_ok=True)
    passed, failed = [], []
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        name = kernel or nb.metadata.get("kernelspec", {}).get("name", "python3")
        # IPC sockets (absolute paths, as the kernel runs in the notebook's folder): no TCP port,
        # and no warning about plain-text TCP.
        sockets = Path(tempfile.mkdtemp(prefix="nbrun-")) / "kernel"
        km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=str(sockets))
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=name,
            resources={"metadata": {"path": str(p.parent.resolve())}},
            allow_errors=False,
        )
        t0 = time.perf_counter()
        error = None
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as e:
            error = e
        finally:
            # nbclient leaves a kernel it did not start to its owner: shut it down here.
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=False)
            shutil.rmtree(sockets.parent, ignore_errors=True)
        dt = time.perf_counter() - t0
        dest = out / p.name
        nbformat.write(nb, dest)
        if error is None:
            print(f"ok     {p.name}  {dt:6.1f} s", flush=True)
            passed.append(p.name)
            continue
        failed.append(p.name)
        cell_no = next((i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = f"cell {cell_no}" if cell_no else "a cell"
        print(f"FAILED {p.name}  {dt:6.1f} s: {where} (executed copy: {dest})", flush=True)
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # no terminal colours in logs
        print(f"--- {p.name}: {where} failed ---\n{text}", file=sys.stderr, flush=True)
    print(f"{len(passed)} passed, {len(failed)} failed")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("check", "strip"):
        s = sub.add_parser(name)
        s.add_argument("notebooks", nargs="+", type=Path)
    r = sub.add_parser("run")
    r.add_argument("--out", type=Path, required=True, help="folder for the executed copies")
    r.add_argument("--kernel", help="kernel name (default: the notebook's)")
    r.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    r.add_argument("--check-stripped", action="store_true",
                   help="first check that the notebooks are stripped; run none when one is not")
    r.add_argument("notebooks", nargs="+", type=Path)
    a = ap.parse_args()
    if a.cmd == "check":
        return cmd_check(a.notebooks)
    if a.cmd == "strip":
        return cmd_strip(a.notebooks)
    if a.check_stripped and cmd_check(a.notebooks) != 0:
        return 1
    return cmd_run(a.notebooks, a.out, a.kernel, a.timeout)


if __name__ == "__main__":
    sys.exit(main())
