"""JVS from Apache Airflow: a workspace snapshot after each pipeline task.

Put this file where your DAGs can import it. The JVS part is plain `subprocess` calls
to the `jvs` CLI with `--json` (one JSON document on stdout, errors as
{"error": {"class", "message", "hint"}}), so it works in any Python, with or without
Airflow. The operators below are defined only when Airflow is importable.

Without Airflow, `python3 airflow_jvs.py demo <worktree>` runs a three-stage pipeline
in a JVS worktree with a snapshot per stage, then a stage whose output the repository's
pre-snapshot hook refuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional


class JvsError(RuntimeError):
    """A `jvs` command failed; `error_class` is the JVS error class (E_...)."""

    def __init__(self, error_class: str, message: str, hint: Optional[str], exit_code: int):
        super().__init__(f"{error_class}: {message}" + (f" (hint: {hint})" if hint else ""))
        self.error_class = error_class
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def run_jvs(args: Iterable[str], cwd: str | os.PathLike[str]) -> dict:
    """Run `jvs <args> --json` in `cwd` and return its JSON document."""
    cmd = [os.environ.get("JVS_BIN", "jvs"), *args, "--json"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        doc = {}
    if proc.returncode != 0:
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        raise JvsError(err.get("class", "E_UNKNOWN"), err.get("message", proc.stderr.strip()), err.get("hint"), proc.returncode)
    return doc


def snapshot(workspace: str | os.PathLike[str], note: str, tags: Iterable[str] = (), paths: Iterable[str] = ()) -> dict:
    """Snapshot the worktree that holds `workspace`; returns the snapshot document."""
    args = ["snapshot", note]
    for tag in tags:
        args += ["--tag", tag]
    paths = list(paths)
    if paths:
        args += ["--paths", *paths]
    return run_jvs(args, cwd=workspace)


def restore(workspace: str | os.PathLike[str], ref: str) -> dict:
    """Restore the worktree that holds `workspace` to `ref` (tag, id, note prefix, HEAD)."""
    return run_jvs(["restore", ref], cwd=workspace)


def run_stage(workspace: str | os.PathLike[str], name: str, stage: Callable[[Path], None]) -> dict:
    """Run `stage(workspace)`, then snapshot the result tagged `name`.

    If the stage raises, no snapshot is taken. If the repository's pre-snapshot hook
    refuses the output, JvsError with error_class E_HOOK_REJECTED is raised and
    nothing is written: a failed stage never becomes a snapshot.
    """
    stage(Path(workspace))
    return snapshot(workspace, f"stage: {name}", tags=[name])


# --- Airflow operators (only when Airflow is installed) ------------------------------

BaseOperator = None
for _module in ("airflow.sdk", "airflow.models.baseoperator"):  # Airflow 3, then 2
    try:
        BaseOperator = getattr(__import__(_module, fromlist=["BaseOperator"]), "BaseOperator")
        break
    except (ImportError, AttributeError):
        continue

if BaseOperator is not None:

    class JvsSnapshotOperator(BaseOperator):  # type: ignore[misc, valid-type]
        """Snapshot a JVS worktree; the snapshot id is the task's return value (XCom)."""

        template_fields = ("workspace", "note", "tags")

        def __init__(self, *, workspace: str, note: str, tags: Iterable[str] = (), paths: Iterable[str] = (), **kwargs):
            super().__init__(**kwargs)
            self.workspace = workspace
            self.note = note
            self.tags = list(tags)
            self.paths = list(paths)

        def execute(self, context):
            return snapshot(self.workspace, self.note, self.tags, self.paths)["snapshot_id"]

    class JvsRestoreOperator(BaseOperator):  # type: ignore[misc, valid-type]
        """Restore a JVS worktree to a snapshot before the tasks that follow."""

        template_fields = ("workspace", "ref")

        def __init__(self, *, workspace: str, ref: str, **kwargs):
            super().__init__(**kwargs)
            self.workspace = workspace
            self.ref = ref

        def execute(self, context):
            return restore(self.workspace, self.ref)["snapshot_id"]


# --- demo without Airflow -------------------------------------------------------------


def _extract(ws: Path) -> None:
    (ws / "raw").mkdir(exist_ok=True)
    (ws / "raw/orders.csv").write_text("id,amount\n1,10\n2,25\n3,-4\n")


def _transform(ws: Path) -> None:
    (ws / "staged").mkdir(exist_ok=True)
    lines = (ws / "raw/orders.csv").read_text().splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if float(line.split(",")[1]) > 0]
    (ws / "staged/orders.csv").write_text("\n".join(kept) + "\n")


def _load(ws: Path) -> None:
    (ws / "marts").mkdir(exist_ok=True)
    rows = (ws / "staged/orders.csv").read_text().splitlines()[1:]
    (ws / "marts/revenue.csv").write_text(f"total\n{sum(float(r.split(',')[1]) for r in rows):g}\n")


def _empty_extract(ws: Path) -> None:
    (ws / "raw/orders.csv").write_text("id,amount\n")


def demo(workspace: str) -> int:
    for name, stage in (("extract", _extract), ("transform", _transform), ("load", _load)):
        print(f"stage {name} -> {run_stage(workspace, name, stage)['snapshot_id']}")
    try:
        run_stage(workspace, "extract", _empty_extract)
        print("the empty extract was snapshotted (is the pre-snapshot hook installed?)")
        return 1
    except JvsError as e:
        if e.error_class != "E_HOOK_REJECTED":
            raise
        print(f"stage extract (empty) refused by the pre-snapshot hook: {e.message.splitlines()[-1]}")
    print(f"back to the last good state: {restore(workspace, 'HEAD')['snapshot_id']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "demo":
        sys.exit(demo(sys.argv[2]))
    print(__doc__)
    print("usage: python3 airflow_jvs.py demo <worktree folder>")
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)
