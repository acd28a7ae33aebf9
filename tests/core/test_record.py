"""The one record schema (harness.record): what job.py writes, the statuses, the names of a
results folder; the store's scan warnings as data."""
from __future__ import annotations

import json
import pickle

from conftest import TINY_SUITE, write_suite

from harness import families
from harness import record as schema
from harness.report.collect import report_warnings
from harness.spec import expand
from harness.store import Scan, ScanWarning, Store
from harness.suite import load_suite


def test_a_record_written_by_a_worker_holds_exactly_the_declared_fields(tmp_path, monkeypatch):
    from harness import job

    class Refuses:
        def __init__(self, config, checkpoint, log):
            raise ValueError("no data here")

    monkeypatch.setattr(job, "load_target", lambda target: Refuses)
    spec = next(expand(load_suite(write_suite(tmp_path, TINY_SUITE))))
    assert job.Job(spec, str(tmp_path / "results"))()["status"] == "failed"
    record = json.loads((tmp_path / "results" / "tiny" / spec.run_id / schema.RECORD).read_text())
    assert set(record) == set(schema.FIELDS) and record["error"]["message"] == "no data here"
    assert schema.problem(record, spec.run_id, spec.config, families.get("fewshot")) is None  # trusted as it is
    assert not (tmp_path / "results" / "tiny" / spec.run_id / schema.CHECKPOINT).exists()


def test_the_statuses_are_one_list_and_its_named_parts():
    assert schema.STORE_STATUSES == ("done", "failed", "running", "pending")
    for part in (schema.FINISHED, schema.FROM_SCHEDULER, schema.NOT_STARTED, schema.ACTIVE):
        assert set(part) <= set(schema.STATUSES)
    assert set(schema.STORE_STATUSES) | set(schema.FROM_SCHEDULER) == set(schema.STATUSES)


def test_every_file_a_harness_writes_beside_the_runs_is_no_foreign_entry(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    store = Store(tmp_path / "results", suite.name)
    for name in schema.KNOWN_FILES:
        (store.dir / name).mkdir(parents=True)
    (store.dir / "plot.png").write_text("x")
    (store.dir / schema.CACHE_DIR).mkdir()
    assert schema.SELECTION in schema.KNOWN_FILES and store.scan(list(expand(suite))).warnings == []


def test_scan_warnings_are_data_with_the_text_they_always_had(tmp_path):
    suite = load_suite(write_suite(tmp_path, TINY_SUITE))
    specs = list(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    (store.dir / "notes.txt").parent.mkdir(parents=True)
    (store.dir / "notes.txt").write_text("x")
    store.record_path(specs[0].run_id).parent.mkdir()
    store.record_path(specs[0].run_id).write_text("{trunc")
    foreign, rejected = sorted(store.scan(specs).warnings, key=lambda w: w.kind)
    assert (foreign.kind, foreign.path) == (ScanWarning.FOREIGN, str(store.dir / "notes.txt"))
    assert foreign == f"{store.dir / 'notes.txt'}: not a run folder of this harness; ignored"
    assert rejected.kind == ScanWarning.REJECTED and rejected.path == str(store.record_path(specs[0].run_id))
    assert rejected == f"{rejected.path}: unreadable or truncated (JSONDecodeError); treated as missing"
    assert pickle.loads(pickle.dumps(rejected)).kind == ScanWarning.REJECTED and json.dumps([rejected]) == json.dumps([str(rejected)])


def test_the_report_leaves_out_its_own_files_by_kind_not_by_text(tmp_path):
    own = ScanWarning(ScanWarning.FOREIGN, tmp_path / "REPORT.md", "not a run folder of this harness; ignored")
    figure = ScanWarning(ScanWarning.FOREIGN, tmp_path / "cost.png", "not a run folder of this harness; ignored")
    # a rejected record whose message happens to read like a foreign entry's is still reported
    lookalike = ScanWarning(ScanWarning.REJECTED, tmp_path / "REPORT.md", "not a run folder of this harness; ignored")
    other = ScanWarning(ScanWarning.FOREIGN, tmp_path / "notes.txt", "not a run folder of this harness; ignored")
    assert report_warnings(Scan(warnings=[own, figure, lookalike, other])) == [lookalike, other]
