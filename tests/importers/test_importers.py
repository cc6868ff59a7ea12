"""Importers over the real benchmark files in ../shared/benchdata."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import counterpoint
from counterpoint.errors import ImportFormatError
from counterpoint.importers import convert, import_workflow, to_yaml
from counterpoint.importers.stg import optimal_values

BENCHDATA = Path(__file__).resolve().parents[2].parent / "shared" / "benchdata"
STG = BENCHDATA / "stg"
pytestmark = pytest.mark.skipif(not BENCHDATA.is_dir(), reason="../shared/benchdata is absent")


def _estimates(wf: counterpoint.Workflow) -> dict[str, float]:
    return {s.id: s.estimate or 0.0 for s in wf.steps}


def test_every_stg_graph_keeps_its_tasks_and_critical_path() -> None:
    files = sorted(STG.glob("*/rand*.stg"))
    assert len(files) == 360

    async def check_all() -> None:
        for path in files:
            text = path.read_text()
            n = int(text.split()[0])
            cp = float(re.search(r"CP Length\s*:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
            wf = import_workflow("stg", path)
            assert len(wf.steps) == n
            # unlimited workers: the makespan is the critical path the file states
            result = await counterpoint.simulate(wf)
            assert result.makespan_s == pytest.approx(cp), path

    asyncio.run(check_all())


def test_stg_steps_match_the_file_line_by_line() -> None:
    data = convert("stg", STG / "50" / "rand0000.stg")
    steps = {s["id"]: s for s in data["steps"]}
    # "10  2  3  2 6 8": task 10 takes 2 and needs 2, 6 and 8; "1 9 1 0" needs only the entry
    assert steps["t10"] == {
        "id": "t10",
        "agent": "task",
        "needs": ["t2", "t6", "t8"],
        "estimate": "2s",
    }
    assert steps["t1"] == {"id": "t1", "agent": "task", "estimate": "9s"}
    assert "t0" not in steps and "t51" not in steps
    assert data["agents"]["task"]["kind"] == "sleep"


def test_optimal_values_cover_all_1440_cases() -> None:
    best = optimal_values(STG)
    assert len(best) == 1440
    assert best["50/rand0000.stg", 2] == 131
    assert {p for _, p in best} == {2, 4, 8, 16}


@pytest.mark.parametrize(
    "path", sorted((BENCHDATA / "wfcommons").glob("*.json")), ids=lambda p: p.stem
)
def test_wfcommons_tasks_runtimes_and_demands(path: Path) -> None:
    doc = json.loads(path.read_text())["workflow"]
    spec = {t["id"]: t for t in doc["specification"]["tasks"]}
    runs = {t["id"]: t for t in doc["execution"]["tasks"]}
    wf = import_workflow("wfcommons", path)
    assert len(wf.steps) == len(spec)
    for step in wf.steps:
        task, run = spec[step.id], runs[step.id]
        assert step.estimate == pytest.approx(run["runtimeInSeconds"])
        assert sorted(step.needs) == sorted(task["parents"])
        expected = {"cores": run.get("coreCount", 1)}
        if "memoryInBytes" in run and "memory" in wf.resources.pools["machines"].capacity:
            expected["memory"] = run["memoryInBytes"]
        assert step.uses == {"machines": expected}
        assert step.input is None
        assert wf.agents[step.agent].kind == "sleep"
    machines = doc["execution"]["machines"]
    pool = wf.resources.pools["machines"].capacity
    assert pool["cores"] == sum(m["cpu"]["coreCount"] for m in machines)
    if all("memoryInBytes" in m for m in machines):
        assert pool["memory"] == sum(m["memoryInBytes"] for m in machines)
    else:
        assert "memory" not in pool


def test_wfcommons_groups_steps_by_program() -> None:
    wf = import_workflow("wfcommons", BENCHDATA / "wfcommons" / "blast-chameleon-small-001.json")
    assert set(wf.agents) == {"split_fasta", "blastall", "cat_blast", "cat"}


@pytest.mark.parametrize("path", sorted((BENCHDATA / "dax").glob("*.xml")), ids=lambda p: p.stem)
def test_dax_jobs_and_dependencies(path: Path) -> None:
    root = ET.parse(path).getroot()
    ns = {"d": "http://pegasus.isi.edu/schema/DAX"}
    jobs = {j.get("id"): float(j.get("runtime", "0")) for j in root.findall("d:job", ns)}
    edges = {
        (p.get("ref"), c.get("ref"))
        for c in root.findall("d:child", ns)
        for p in c.findall("d:parent", ns)
    }
    wf = import_workflow("dax", path)
    assert _estimates(wf) == pytest.approx(jobs)
    assert {(n, s.id) for s in wf.steps for n in s.needs} == edges


def test_cli_import_writes_yaml_that_loads_to_the_same_workflow(tmp_path: Path) -> None:
    path = BENCHDATA / "dax" / "Montage_25.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "import", "dax", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == to_yaml(convert("dax", path))
    out = tmp_path / "montage.yaml"
    out.write_text(proc.stdout)
    loaded = counterpoint.load(out)
    direct = import_workflow("dax", path)
    assert loaded.steps == direct.steps
    assert loaded.agents == direct.agents


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("fmt", "name", "text", "message"),
    [
        ("stg", "a.stg", "", "a.stg: the first line should be the number of tasks"),
        (
            "stg",
            "a.stg",
            "2\n0 0 0\n1 3 1 0\n3 0 1 1\n",
            "a.stg:4: expected 4 task lines (n = 2 plus entry and exit), got 3",
        ),
        (
            "stg",
            "a.stg",
            "1\n0 0 0\n1 x 1 0\n2 0 1 1\n",
            "a.stg:3: expected whole numbers, got '1 x 1 0'",
        ),
        (
            "stg",
            "a.stg",
            "1\n0 0 0\n1 3 2 0\n2 0 1 1\n",
            "a.stg:3: expected 'id time n_preds pred...' for task 1, got '1 3 2 0'",
        ),
        (
            "stg",
            "a.stg",
            "1\n0 0 0\n1 3 1 2\n2 0 1 1\n",
            "a.stg:3: task 1 needs task 2, which does not come before it",
        ),
        ("wfcommons", "w.json", '{"workflow": \n[}', "w.json:2: not valid JSON: Expecting value"),
        (
            "wfcommons",
            "w.json",
            '{"schemaVersion": "1.3", "workflow": {"tasks": []}}',
            "w.json: expected WfFormat 1.5 with workflow.specification and "
            "workflow.execution (this file says schemaVersion 1.3)",
        ),
        (
            "wfcommons",
            "w.json",
            '{"workflow": {"specification": {"tasks": [\n{"id": "a", "parents": []}]},\n'
            ' "execution": {"tasks": []}}}',
            "w.json:2: task 'a' has no entry in workflow.execution.tasks",
        ),
        (
            "dax",
            "d.xml",
            "<adag>\n<job id='a'>\n</adag>",
            "d.xml:3: not valid XML: mismatched tag: line 3, column 2",
        ),
        (
            "dax",
            "d.xml",
            "<adag><job id='a' runtime='1'/><child ref='b'/></adag>",
            "d.xml: <child ref='b'> names no job",
        ),
        (
            "dax",
            "d.xml",
            "<adag><job id='a' runtime='soon'/></adag>",
            "d.xml: job 'a' has a runtime that is not a number: 'soon'",
        ),
    ],
)
def test_bad_files_say_where_and_what(
    tmp_path: Path, fmt: str, name: str, text: str, message: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ImportFormatError) as caught:
        convert(fmt, path)
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_cli_import_of_a_bad_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.stg", "zero\n")
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "import", "stg", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"{path}:1: expected whole numbers, got 'zero'"


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        convert("stg", tmp_path / "nope.stg")
    with pytest.raises(
        ImportFormatError, match=r"unknown format 'csv' \(formats: stg, wfcommons, dax, agent-os\)"
    ):
        convert("csv", tmp_path / "nope.stg")
