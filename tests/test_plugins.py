"""Plugins through the real CLI: a suite's local `plugins:`, installed entry points, and
every kind of bad plugin (one line naming the plugin and the problem, exit 2, no
traceback, nothing launched)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_cli_errors import assert_nothing_written, assert_one_line_error

SUITE = """
name: plugged
paper: test
plugins: {plugins}
defaults: {{ways: 5, queries: 3, steps: 6, val_every: 3, val_episodes: 5, test_episodes: 10, test_queries: 5, device: cpu}}
grid:
  dataset: [omniglot]
  shots: [1]
  method: {methods}
  seed: [0]
"""

METHOD = '''
from harness.api import register
from harness.fewshot.methods.protonet import ProtoNet


@register("fewshot.method", "{name}", version="1", uses={{"eval_head": "centroid"}})
class Plugged(ProtoNet):
    pass
'''

FAMILY_HEAD = '''
from harness.api import REQUIRED, Family, Key, Metric, Registry
'''


def cli(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HARNESS_RESULTS": str(folder / "results"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=folder, env=environment,
                          capture_output=True, text=True, timeout=300)


def write(folder: Path, files: dict, plugins: list, methods: list) -> Path:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    suite = folder / "suite.yaml"
    suite.write_text(textwrap.dedent(SUITE.format(plugins=plugins, methods=methods)))
    return suite


def family_file(body: str) -> str:
    return FAMILY_HEAD + textwrap.dedent(body)


GOOD_KEYS = '''
DATASETS = Registry("tiny{n}.dataset")
METHODS = Registry("tiny{n}.method")
KEYS = {{"dataset": Key(str, REQUIRED, "d", choices=DATASETS), "method": Key(str, REQUIRED, "m", choices=METHODS),
        "seed": Key(int, REQUIRED, "s", minimum=0)}}
'''

BAD_PLUGINS = [
    ("syntax-error", {"broken.py": "def broken(:\n    pass\n"}, ["broken.py"], ["protonet"], "plan",
     ["plugins[0]", "broken.py:1: SyntaxError"]),
    ("missing-file", {}, ["nowhere.py"], ["protonet"], "plan", ["plugins[0]", "plugin 'nowhere.py': no such file"]),
    ("family-import-fails", {"fam.py": family_file(GOOD_KEYS.format(n=1) + '''
import not_a_module_anywhere
FAMILY = Family(name="tiny1", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "fam.py", "ModuleNotFoundError", "not_a_module_anywhere"]),
    ("registered-twice", {"a.py": METHOD.format(name="twin"), "b.py": METHOD.format(name="twin")}, ["a.py", "b.py"],
     ["twin"], "plan", ["plugins[1]", "fewshot.method 'twin' is registered twice", "a.py"]),
    ("clashes-with-built-in", {"a.py": METHOD.format(name="mtl")}, ["a.py"], ["mtl"], "plan",
     ["plugins[0]", "fewshot.method 'mtl' clashes with the built-in one", "methods/mtl.py"]),
    ("malformed-family", {"fam.py": family_file('''
DATASETS = Registry("tiny2.dataset")
KEYS = {"dataset": Key(str, REQUIRED, "d", choices=DATASETS), "seed": Key(int, REQUIRED, "s")}
FAMILY = Family(name="tiny2", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny2'", "keys must include 'method'"]),
    ("bad-metric-direction", {"fam.py": family_file(GOOD_KEYS.format(n=3) + '''
FAMILY = Family(name="tiny3", version="1", help="h", keys=KEYS, trainer="fam:Trainer",
                metrics=(Metric("loss", direction="smaller"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny3'", "direction must be 'higher' or 'lower'"]),
    ("key-of-wrong-type", {"fam.py": family_file(GOOD_KEYS.format(n=4) + '''
KEYS["layers"] = Key(list, [64, 64], "widths")
FAMILY = Family(name="tiny4", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny4'", "key 'layers': type must be one of int, float, bool, str"]),
    ("default-of-wrong-type", {"fam.py": family_file(GOOD_KEYS.format(n=5) + '''
KEYS["epochs"] = Key(int, "five", "epochs")
FAMILY = Family(name="tiny5", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny5'", "key 'epochs': default 'five' is not of its type int"]),
    ("no-version", {"a.py": METHOD.format(name="nov").replace(', version="1"', "")}, ["a.py"], ["nov"], "plan",
     ["plugins[0]", "a.py:6", "needs version="]),
    ("not-literal", {"a.py": "from harness.api import register\nNAME = 'x'\n@register('fewshot.method', 'lit', version=NAME)\nclass X: pass\n"},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "a.py:3", "must be literals"]),
    ("folder-form-in-a-plugin", {"a.py": "from harness.fewshot.methods import register\n@register('bare', version='1')\nclass X: pass\n"},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "register('bare', ...) names no registry"]),
    # found by reading the file, so `plan` works; `run` imports what it will use first
    ("component-import-fails", {"a.py": "import not_installed_package\n" + METHOD.format(name="needs_more")}, ["a.py"],
     ["needs_more"], "run", ["method 'needs_more'", "a.py: import failed: ModuleNotFoundError", "not_installed_package"]),
    ("declared-but-not-registered", {"a.py": "from harness.api import register\nif False:\n    @register('fewshot.method', 'ghost', version='1')\n    class Ghost: pass\n"},
     ["a.py"], ["ghost"], "run", ["a.py:3 declares fewshot.method 'ghost', but importing it did not register it"]),
]


@pytest.mark.parametrize("files, plugins, methods, command, fragments",
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_PLUGINS])
def test_a_bad_plugin_is_one_line_exit_2_and_nothing_is_launched(tmp_path, files, plugins, methods, command, fragments):
    suite = write(tmp_path, files, plugins, methods)
    result = cli(tmp_path, command, str(suite), *(["--cluster", "debug"] if command == "run" else []))
    assert_one_line_error(result, str(suite), *fragments)
    assert_nothing_written(tmp_path)


def test_plan_of_a_plugin_suite_reads_the_plugin_without_importing_it(tmp_path):
    suite = write(tmp_path, {"a.py": "import torch\nraise SystemExit('imported!')\n" + METHOD.format(name="lazy")},
                  ["a.py"], ["lazy", "protonet"])
    code = ("import sys; from harness.cli import main; code = main(['plan', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(suite)], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")})
    assert result.returncode == 0, result.stderr
    assert "lazy" in result.stdout and "2 runs: 0 done" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_workers_load_the_suites_plugins(tmp_path, cluster):
    suite = write(tmp_path, {"plugged.py": METHOD.format(name="plugged")}, ["plugged.py"], ["plugged"])
    result = cli(tmp_path, "run", str(suite), "--cluster", cluster, "--quiet")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "results" / "plugged" / "REPORT.md").read_text()
    assert "| omniglot  | 5      | 1       | plugged" in report and "Runs: 1 done" in report


def test_list_shows_a_suites_plugin_with_its_origin(tmp_path):
    suite = write(tmp_path, {"plugged.py": METHOD.format(name="plugged")}, ["plugged.py"], ["plugged"])
    result = cli(tmp_path, "list", str(suite))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("  method:") and "plugged" in line)
    assert "mtl, protonet, r2d2 (built in)" in line and f"plugged (plugin {tmp_path / 'plugged.py'})" in line


# ---------------------------------------------------------------- installed packages (entry points)


def fake_distribution(site: Path, name: str, modules: dict) -> None:
    """An installed distribution as importlib.metadata sees one: a .dist-info folder with
    entry points of the group harness.plugins, and its modules beside it."""
    dist = site / f"{name.replace('-', '_')}-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[harness.plugins]\n" + "".join(f"{m} = {m}\n" for m in modules))
    for module, text in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(text))


def with_site(site: Path, **more) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **more}


def test_an_installed_plugin_is_found_listed_and_used(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "lab-methods", {"lab_method": METHOD.format(name="lab_method")})
    suite = write(tmp_path, {}, [], ["lab_method"])
    listed = cli(tmp_path, "list", env=with_site(site))
    assert "lab_method (plugin lab-methods 0.3 (lab_method))" in listed.stdout, listed.stdout
    planned = cli(tmp_path, "plan", str(suite), env=with_site(site))
    assert planned.returncode == 0 and "lab_method" in planned.stdout, planned.stderr
    off = cli(tmp_path, "plan", str(suite), env=with_site(site, HARNESS_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert_one_line_error(off, "unknown method 'lab_method'")


def test_a_broken_installed_plugin_stops_only_the_suites_that_need_it(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "lab-broken", {"lab_broken": "def broken(:\n"})
    listed = cli(tmp_path, "list", env=with_site(site))
    assert listed.returncode == 0 and "broken plugin: plugin lab-broken 0.3 (lab_broken)" in listed.stdout
    assert "SyntaxError" in listed.stdout
    fine = write(tmp_path, {}, [], ["protonet"])
    assert cli(tmp_path, "plan", str(fine), env=with_site(site)).returncode == 0
    needs = write(tmp_path, {}, [], ["lab_method"])
    assert_one_line_error(cli(tmp_path, "plan", str(needs), env=with_site(site)),
                          "unknown method 'lab_method'", "plugin lab-broken 0.3 (lab_broken)", "SyntaxError")


KEYED = '''
from harness.api import register
from harness.fewshot.methods.protonet import ProtoNet


@register("fewshot.method", "keyed", version="1", uses={"eval_head": "centroid"},
          keys={"keyed_temperature": {"type": "float", "default": 1.0, "help": "keyed: logit scale", "minimum": 0.0}})
class Keyed(ProtoNet):
    pass
'''


def test_a_plugin_component_adds_its_own_config_key(tmp_path):
    suite = write(tmp_path, {"keyed.py": KEYED}, ["keyed.py"], ["keyed", "protonet"])
    text = suite.read_text().replace("device: cpu}", "device: cpu, keyed_temperature: 1.0}")
    suite.write_text(text)
    at_default = cli(tmp_path, "plan", str(suite), "--format", "json")
    assert at_default.returncode == 0, at_default.stderr
    runs = {r["config"]["method"]: r for r in __import__("json").loads(at_default.stdout)["runs"]}
    assert runs["keyed"]["config"]["keyed_temperature"] == 1.0
    suite.write_text(text.replace("keyed_temperature: 1.0", "keyed_temperature: 2.0"))
    changed = __import__("json").loads(cli(tmp_path, "plan", str(suite), "--format", "json").stdout)["runs"]
    assert {r["config"]["method"]: r["run_id"] for r in changed}["keyed"] != runs["keyed"]["run_id"]
    suite.write_text(text.replace("keyed_temperature: 1.0", "keyed_temperature: -1.0"))
    assert_one_line_error(cli(tmp_path, "plan", str(suite)), "defaults.keyed_temperature: must be >= 0")


def test_a_component_key_clashing_with_a_family_key_is_one_line(tmp_path):
    clash = KEYED.replace('"keyed_temperature": {"type": "float", "default": 1.0', '"lr": {"type": "float", "default": 0.5')
    suite = write(tmp_path, {"keyed.py": clash}, ["keyed.py"], ["keyed"])
    assert_one_line_error(cli(tmp_path, "plan", str(suite)), "plugins[0]", "key 'lr'", "already has a key 'lr' of another meaning")
