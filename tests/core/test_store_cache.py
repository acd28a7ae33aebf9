"""The store's scan cache can never change a result: entries of changed, replaced or
deleted records are never used, damaged cache files are ignored and rebuilt, and every
scan (cache off, cold, warm) and every report made from it is identical."""
import dataclasses
import inspect
import json
import os
import time

import numpy as np
import pytest
from conftest import TINY_SUITE, write_suite
from test_store import fake_record

from harness import families
from harness import store as store_module
from harness.spec import expand
from harness.store import CACHE_DIR, Store, family_fingerprint
from harness.suite import load_suite

SIX_RUNS = TINY_SUITE.replace("seed: [0]", "seed: [0, 1, 2]")


@pytest.fixture
def settled(monkeypatch):
    """Records count as settled at once (the cache otherwise skips files younger than RACY_NS)."""
    monkeypatch.setattr(store_module, "RACY_NS", -10**9)


@pytest.fixture
def grid(tmp_path, settled):
    """Six runs: four done (per-episode accuracies), one failed, one damaged record."""
    suite = load_suite(write_suite(tmp_path, SIX_RUNS))
    specs = list(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    rng = np.random.default_rng(1)
    for spec in specs[:4]:
        store.write_record(fake_record(spec, accuracies=rng.normal(85, 5, size=30).round(3).tolist()))
    store.write_record(fake_record(specs[4], status="failed"))
    store.run_dir(specs[5].run_id).mkdir(parents=True)
    store.record_path(specs[5].run_id).write_text('{"run_id": "' + specs[5].run_id + '", "sta')
    return suite, specs, store


def plain(value):
    """Arrays as lists, to compare whole records."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"array": value.dtype.str, "values": value.tolist()}
    return value


def snapshot(scan) -> tuple:
    states = {run_id: (state.status, plain(state.record), state.running) for run_id, state in scan.states.items()}
    return states, list(scan.warnings), scan.unplanned


def fresh_scan(store, specs):
    """A scan by a new Store (as a new command would make), not the one cached in memory."""
    return Store(store.root, store.suite).scan(specs)


def index_entries(store) -> dict:
    return store_module._read_index(store.dir / CACHE_DIR / store_module.CACHE_INDEX)[0]


def segments(store) -> list:
    return sorted((store.dir / CACHE_DIR).glob("seg-*.bin"))


def report_text(suite, store, fmt="markdown") -> str:
    from harness.report import build

    takes_options = len(inspect.signature(build).parameters) >= 4
    text, _ = build(suite, Store(store.root, store.suite), fmt, {"plots": False}) if takes_options else \
        build(suite, Store(store.root, store.suite), fmt)
    return text


def test_cache_off_cold_and_warm_scans_are_identical(grid, monkeypatch):
    suite, specs, store = grid
    monkeypatch.setenv("HARNESS_STORE_CACHE", "off")
    off = snapshot(fresh_scan(store, specs))
    assert not (store.dir / CACHE_DIR).exists()
    monkeypatch.delenv("HARNESS_STORE_CACHE")
    cold = snapshot(fresh_scan(store, specs))
    assert set(index_entries(store)) == {spec.run_id for spec in specs}  # the damaged one too: its verdict
    warm = snapshot(fresh_scan(store, specs))
    assert off == cold == warm
    assert [off[0][s.run_id][0] for s in specs] == ["done"] * 4 + ["failed", "pending"]
    assert len(off[1]) == 1 and "truncated" in off[1][0]


def test_reports_with_and_without_the_cache_are_identical_and_equal_the_plain_records(grid, monkeypatch):
    suite, specs, store = grid
    for fmt in ("markdown", "csv"):
        monkeypatch.setenv("HARNESS_STORE_CACHE", "off")
        off = report_text(suite, store, fmt)
        # the records exactly as record.json holds them (samples as lists, no arrays)
        monkeypatch.setattr(store_module, "with_sample_arrays", lambda record, family: record)
        as_lists = report_text(suite, store, fmt)
        monkeypatch.undo()
        monkeypatch.setattr(store_module, "RACY_NS", -10**9)
        cold = report_text(suite, store, fmt)
        warm = report_text(suite, store, fmt)
        assert off == as_lists == cold == warm
        assert "s0: 8" in off or fmt == "csv"


def test_samples_are_read_only_arrays_of_exactly_the_records_values(grid):
    suite, specs, store = grid
    expected = json.loads(store.record_path(specs[0].run_id).read_text())["metrics"]["episode_accuracies"]
    for scan in (fresh_scan(store, specs), fresh_scan(store, specs)):  # parsed, then from the cache
        samples = scan.states[specs[0].run_id].record["metrics"]["episode_accuracies"]
        assert isinstance(samples, np.ndarray) and samples.dtype == np.float64
        assert samples.tolist() == expected and not samples.flags.writeable
        assert list(scan.states[specs[0].run_id].record["metrics"]) == ["accuracy", "episode_accuracies"]
    record, _ = store.read_record(specs[0].run_id, specs[0].config)
    assert record["metrics"]["episode_accuracies"] == expected  # read_record: the plain JSON


@pytest.mark.parametrize("values, kind", [
    ([1, 0, 1, 1], "<i8"), ([0.5, 1.0], "<f8"), ([], "<f8"), ([True, False], list), ([1, None], list),
    ([[1, 2], [3, 4]], list), ([2**70, 1], list),
])
def test_only_flat_numbers_become_arrays(values, kind):
    converted = store_module._sample_array(values)
    if kind is list:
        assert converted is values
    else:
        assert converted.dtype.str == kind and converted.tolist() == values


def test_an_entry_of_a_rewritten_replaced_or_deleted_record_is_never_used(grid):
    suite, specs, store = grid
    fresh_scan(store, specs)  # cache built
    # rewritten atomically with other values (same size: only the inode tells)
    record = fake_record(specs[0], accuracies=[11.0, 22.0])
    store.write_record(record)
    # replaced by another run's record: its spec is not this run's
    store.write_record({**fake_record(specs[1]), "spec": specs[2].config})
    # deleted
    store.record_path(specs[2].run_id).unlink()
    scan = fresh_scan(store, specs)
    assert scan.states[specs[0].run_id].record["metrics"]["episode_accuracies"].tolist() == [11.0, 22.0]
    assert scan.states[specs[1].run_id].status == "pending"
    assert any(str(store.record_path(specs[1].run_id)) in w and "spec differs" in w for w in scan.warnings)
    assert scan.states[specs[2].run_id].status == "pending" and scan.states[specs[2].run_id].record is None
    assert fresh_scan(store, specs).states[specs[0].run_id].record["metrics"]["accuracy"] == 16.5


def test_a_record_rewritten_in_place_with_its_old_size_and_mtime_is_read_again(grid):
    suite, specs, store = grid
    fresh_scan(store, specs)
    path = store.record_path(specs[0].run_id)
    before = os.stat(path)
    text = path.read_text()
    changed = text.replace('"accuracy": ', '"accuracy": 1', 1).replace(" ", "", 1)
    assert len(changed) == len(text) and changed != text
    with open(path, "r+") as handle:  # in place: same inode, same size
        handle.write(changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime (only ctime moves)
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_mtime_ns == before.st_mtime_ns
    scan = fresh_scan(store, specs)
    assert scan.states[specs[0].run_id].record["metrics"]["accuracy"] == json.loads(changed)["metrics"]["accuracy"]


def test_a_record_written_just_now_is_not_cached(tmp_path):
    suite = load_suite(write_suite(tmp_path, SIX_RUNS))
    specs = list(expand(suite))
    store = Store(tmp_path / "results", suite.name)
    store.write_record(fake_record(specs[0]))
    assert fresh_scan(store, specs).states[specs[0].run_id].status == "done"
    assert specs[0].run_id not in index_entries(store)  # its key could still change within one tick
    old = time.time_ns() - 2 * store_module.RACY_NS
    os.utime(store.record_path(specs[0].run_id), ns=(old, old))  # mtime old, but ctime is now
    fresh_scan(store, specs)
    assert specs[0].run_id not in index_entries(store)


def test_entries_are_keyed_on_the_family_schema_and_validation_code(grid, monkeypatch):
    suite, specs, store = grid
    fresh_scan(store, specs)
    family = families.get("fewshot")
    keys = dict(family.keys)
    keys["steps"] = dataclasses.replace(keys["steps"], default=keys["steps"].default + 1)
    assert family_fingerprint(dataclasses.replace(family, keys=keys)) != family_fingerprint(family)
    assert family_fingerprint(dataclasses.replace(family, version="99")) != family_fingerprint(family)
    # a cached verdict made under another schema is not used: the record is read and checked again
    monkeypatch.setattr(store_module, "family_fingerprint", lambda family: "another schema")
    read = []
    real = store_module._checked
    monkeypatch.setattr(store_module, "_checked", lambda *args: read.append(args[1]) or real(*args))
    fresh_scan(store, specs)
    assert sorted(read) == sorted(spec.run_id for spec in specs)


def damage_index(store):
    path = store.dir / CACHE_DIR / store_module.CACHE_INDEX
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_index_garbage(store):
    (store.dir / CACHE_DIR / store_module.CACHE_INDEX).write_bytes(os.urandom(5000))


def damage_index_body(store):  # readable, but not what the crc says
    path = store.dir / CACHE_DIR / store_module.CACHE_INDEX
    header, _, body = path.read_bytes().partition(b"\n")
    changed = body.replace(b"segments", b"segmentz")
    assert changed != body
    path.write_bytes(header + b"\n" + changed)


def damage_segment_garbage(store):  # same size: only the crc32 tells
    for path in segments(store):
        path.write_bytes(os.urandom(path.stat().st_size))


def damage_segment_bytes(store):  # one flipped byte in each entry's sample arrays
    for entry in index_entries(store).values():
        if entry[store_module.SEG]:
            path = store.dir / CACHE_DIR / entry[store_module.SEG]
            data = bytearray(path.read_bytes())
            data[entry[store_module.OFFSET] + 3] ^= 0x40
            path.write_bytes(bytes(data))


def damage_segment_truncated(store):
    for path in segments(store):
        path.write_bytes(path.read_bytes()[:100])


def damage_segment_missing(store):
    for path in segments(store):
        path.unlink()


def damage_everything(store):
    for path in (store.dir / CACHE_DIR).iterdir():
        path.write_bytes(b"\0" * 64)


@pytest.mark.parametrize("damage", [damage_index, damage_index_garbage, damage_index_body, damage_segment_garbage,
                                    damage_segment_bytes, damage_segment_truncated, damage_segment_missing,
                                    damage_everything])
def test_a_damaged_cache_is_ignored_and_rebuilt(grid, damage):
    suite, specs, store = grid
    reference = snapshot(fresh_scan(store, specs))
    damage(store)
    assert snapshot(fresh_scan(store, specs)) == reference
    # rebuilt: the next scan reads no record file
    entries = index_entries(store)
    assert set(entries) == {spec.run_id for spec in specs}
    live = {entry[store_module.SEG] for entry in entries.values() if entry[store_module.SEG]}
    assert {path.name for path in segments(store)} == live
    assert snapshot(fresh_scan(store, specs)) == reference


def test_a_warm_scan_reads_no_record_file(grid, monkeypatch):
    suite, specs, store = grid
    fresh_scan(store, specs)
    read = []
    monkeypatch.setattr(store_module, "_read_stable", lambda path: read.append(path))
    scan = fresh_scan(store, specs)
    assert read == [] and [scan.states[s.run_id].status for s in specs] == ["done"] * 4 + ["failed", "pending"]


def test_the_cache_is_never_committed_and_never_a_run_folder(grid):
    suite, specs, store = grid
    scan = fresh_scan(store, specs)
    cache = store.dir / CACHE_DIR
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not any(CACHE_DIR in warning for warning in scan.warnings)


def test_a_cache_that_cannot_be_written_changes_nothing(grid, monkeypatch):
    suite, specs, store = grid
    reference = snapshot(Store(store.root, store.suite).scan(specs))

    def refuse(*args, **kwargs):
        raise PermissionError("read-only results")

    monkeypatch.setattr(store_module, "_replace_with", refuse)
    for path in (store.dir / CACHE_DIR).glob("*"):
        path.unlink()
    assert snapshot(fresh_scan(store, specs)) == reference
    assert snapshot(fresh_scan(store, specs)) == reference


def test_a_process_that_is_saving_makes_others_skip_saving(grid):
    suite, specs, store = grid
    folder = store.dir / CACHE_DIR
    folder.mkdir()
    with store_module._exclusive(folder / store_module.CACHE_LOCK) as mine:
        assert mine
        reference = snapshot(fresh_scan(store, specs))  # another Store, same process: flock is per open file
    assert not index_entries(store)
    assert snapshot(fresh_scan(store, specs)) == reference and index_entries(store)


def test_segments_are_added_then_compacted(grid):
    suite, specs, store = grid
    fresh_scan(store, specs)
    for round_ in range(store_module.MAX_SEGMENTS + 2):
        store.write_record(fake_record(specs[0], accuracies=[float(round_), 1.0]))
        assert fresh_scan(store, specs).states[specs[0].run_id].record["metrics"]["accuracy"] == (round_ + 1) / 2
        assert len(segments(store)) <= store_module.MAX_SEGMENTS
    entries = index_entries(store)
    assert {path.name for path in segments(store)} == {e[store_module.SEG] for e in entries.values() if e[store_module.SEG]}
    assert snapshot(fresh_scan(store, specs))[0][specs[0].run_id][1]["metrics"]["accuracy"] == (round_ + 1) / 2


def test_a_bad_entry_found_when_its_record_is_read_is_replaced_from_the_record_file(grid, monkeypatch):
    """A warm scan trusts an entry's summary (status, components) and decodes the record
    only when asked: bytes that fail their check then are never used; the record file is
    read instead and the entry rebuilt when the process ends."""
    suite, specs, store = grid
    reference = snapshot(fresh_scan(store, specs))
    damage_segment_bytes(store)
    scanner = Store(store.root, store.suite)
    scan = scanner.scan(specs)
    assert [scan.states[s.run_id].status for s in specs] == ["done"] * 4 + ["failed", "pending"]
    assert snapshot(scan) == reference  # every record read from its file after all
    scanner._cache().save()  # what the process does when it ends
    read = []
    real = store_module._read_stable
    monkeypatch.setattr(store_module, "_read_stable", lambda path: read.append(path) or real(path))
    assert snapshot(fresh_scan(store, specs)) == reference and read == []  # rebuilt: no file read again
