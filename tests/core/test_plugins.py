"""Plugins through the `harness` command: a suite's local `plugins:`, installed entry
points, and every kind of bad plugin (one line naming the plugin and the problem, exit 2,
no traceback, nothing launched).

Most run the command in this process (``harness.cli.main``), with the plugins found so
far forgotten before and after each test (``harness.plugins.reset``); those that need a
process of their own (torch must not be imported, workers load the plugins, the command
as a user types it) run it in a subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli_errors import assert_nothing_written, assert_one_line_error

from harness import plugins
from harness.cli import main

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


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """The plugins found so far forgotten, before and after; the command runs in tmp_path."""
    plugins.reset()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv(plugins.AUTOLOAD_OFF, raising=False)
    yield
    plugins.reset()


def cli(capsys, *args: str) -> subprocess.CompletedProcess:
    """`harness ARGS` in this process: its exit code and what it printed."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    printed = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, printed.out, printed.err)


def cli_process(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`harness ARGS` in a process of its own, in ``folder``."""
    environment = {**os.environ, "HARNESS_RESULTS": str(folder / "results"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=folder, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


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
     ["needs_more"], "run", ["plugins[0]", "a.py: import failed: ModuleNotFoundError", "not_installed_package"]),
    ("declared-but-not-registered", {"a.py": "from harness.api import register\nif False:\n    @register('fewshot.method', 'ghost', version='1')\n    class Ghost: pass\n"},
     ["a.py"], ["ghost"], "run", ["a.py:3 declares fewshot.method 'ghost', but importing it did not register it"]),
    ("raises-on-import-though-no-run-uses-it", {"a.py": "raise RuntimeError('a broken plugin')\n"}, ["a.py"], ["protonet"],
     "run", ["plugins[0]", "a.py: import failed: RuntimeError: a broken plugin"]),
    # the keys a component declares
    ("key-spec-without-type", {"a.py": METHOD.format(name="k1").replace('version="1"', 'version="1", keys={"k1_x": {"default": 1}}')},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "a.py:6", "key 'k1_x'", "declare it as"]),
    ("key-spec-unknown-field", {"a.py": METHOD.format(name="k2").replace(
        'version="1"', 'version="1", keys={"k2_x": {"type": "int", "default": 1, "maximum": 3}}')},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "a.py:6", "key 'k2_x'", "unknown field(s) maximum"]),
    ("variant-without-its-version", {"a.py": METHOD.format(name="k3").replace(
        'version="1"', 'version="1", keys={"k3_impl": {"type": "str", "default": "ours", "choices": ["ours", "theirs", "old"], '
                       '"versions": {"theirs": "1"}}}')},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "a.py:6", "key 'k3_impl'", "no version for variant(s) 'old'"]),
    ("variant-versions-the-default", {"a.py": METHOD.format(name="k4").replace(
        'version="1"', 'version="1", keys={"k4_impl": {"type": "str", "default": "ours", "choices": ["ours", "theirs"], '
                       '"versions": {"ours": "1", "theirs": "1"}}}')},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "key 'k4_impl'", "versions names the default 'ours'"]),
    ("key-of-another-type-than-the-familys", {"a.py": METHOD.format(name="k5").replace(
        'version="1"', 'version="1", keys={"lr": {"type": "str", "default": "fast"}}')},
     ["a.py"], ["protonet"], "plan", ["plugins[0]", "a.py:6", "key 'lr'", "family fewshot declares 'lr' as float, the component as str"]),
    ("two-components-disagree-on-a-key", {"a.py": METHOD.format(name="k6").replace(
        'version="1"', 'version="1", keys={"k_shared": {"type": "int", "default": 1}}'),
        "b.py": METHOD.format(name="k7").replace('version="1"', 'version="1", keys={"k_shared": {"type": "int", "default": 2}}')},
     ["a.py", "b.py"], ["protonet"], "plan", ["plugins[1]", "b.py:6", "key 'k_shared'", "another type, default", "a.py:6"]),
    # what a family names must exist and be callable (read from the text: nothing imported)
    ("trainer-not-callable", {"fam.py": family_file(GOOD_KEYS.format(n=6) + '''
Trainer = None
FAMILY = Family(name="tiny6", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),))
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny6'", "trainer 'fam:Trainer'", "fam.Trainer is not callable (it is None)"]),
    ("report-missing", {"fam.py": family_file(GOOD_KEYS.format(n=7) + '''
class Trainer: pass
FAMILY = Family(name="tiny7", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),),
                report="fam:build_report")
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny7'", "report 'fam:build_report'", "fam has no 'build_report'"]),
    ("check-module-missing", {"fam.py": family_file(GOOD_KEYS.format(n=8) + '''
class Trainer: pass
FAMILY = Family(name="tiny8", version="1", help="h", keys=KEYS, trainer="fam:Trainer", metrics=(Metric("accuracy"),),
                check="no_such_module_here:check")
''')}, ["fam.py"], ["protonet"], "plan", ["plugins[0]", "family 'tiny8'", "check 'no_such_module_here:check'", "cannot be found"]),
]



@pytest.mark.parametrize("files, plugins, methods, command, fragments",
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_PLUGINS])
def test_a_bad_plugin_is_one_line_exit_2_and_nothing_is_launched(tmp_path, fresh, capsys, files, plugins, methods,
                                                                  command, fragments):
    suite = write(tmp_path, files, plugins, methods)
    result = cli(capsys, command, suite, *(["--cluster", "debug"] if command == "run" else []))
    assert_one_line_error(result, str(suite), *fragments)
    assert_nothing_written(tmp_path)


def test_plan_of_a_plugin_suite_reads_the_plugin_without_importing_it(tmp_path):
    suite = write(tmp_path, {"a.py": "import torch\nraise SystemExit('imported!')\n" + METHOD.format(name="lazy")},
                  ["a.py"], ["lazy", "protonet"])
    code = ("import sys; from harness.cli import main; code = main(['plan', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(suite)], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "HARNESS_RESULTS": str(tmp_path / "results")}, check=False)
    assert result.returncode == 0, result.stderr
    assert "lazy" in result.stdout and "2 runs: 0 done" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_workers_load_the_suites_plugins(tmp_path, cluster):
    suite = write(tmp_path, {"plugged.py": METHOD.format(name="plugged")}, ["plugged.py"], ["plugged"])
    result = cli_process(tmp_path, "run", str(suite), "--cluster", cluster, "--quiet")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "results" / "plugged" / "REPORT.md").read_text()
    assert "| omniglot  | 5      | 1       | plugged" in report and "Runs: 1 done" in report


def test_list_shows_a_suites_plugin_with_its_origin(tmp_path, fresh, capsys):
    suite = write(tmp_path, {"plugged.py": METHOD.format(name="plugged")}, ["plugged.py"], ["plugged"])
    result = cli(capsys, "list", suite)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("  method:") and "plugged" in line)
    assert "mtl, protonet, r2d2 (built in)" in line and f"plugged (plugin {tmp_path / 'plugged.py'})" in line


def test_reset_forgets_a_suites_plugin_as_a_fresh_process_would(tmp_path, fresh, capsys):
    suite = write(tmp_path, {"plugged.py": METHOD.format(name="plugged")}, ["plugged.py"], ["plugged"])
    assert cli(capsys, "plan", suite).returncode == 0
    methods = plugins.family("fewshot").methods
    first = methods.get("plugged")  # imports plugged.py, as a worker does
    assert "plugged" in sys.modules and str(tmp_path) in sys.path
    plugins.reset()
    assert "plugged" not in methods.names() and "plugged" not in sys.modules and str(tmp_path) not in sys.path
    assert cli(capsys, "plan", write(tmp_path, {}, [], ["protonet"])).returncode == 0
    assert "plugged" not in methods.names()  # a suite without it does not see it
    (tmp_path / "plugged.py").write_text(textwrap.dedent(METHOD.format(name="plugged")) + "\n# edited\n")
    assert cli(capsys, "plan", write(tmp_path, {}, ["plugged.py"], ["plugged"])).returncode == 0
    again = methods.get("plugged")  # the edited file, imported anew: not "registered twice"
    assert again is not first and again.__module__ == "plugged"


# ---------------------------------------------------------------- a family in one local file

ONE_FILE_FAMILY = '''
"""A whole family in one file: its registries, a dataset, a method and the trainer."""
from harness.api import REQUIRED, Family, Key, Metric, Registry, register

DATASETS = Registry("onefam.dataset")
METHODS = Registry("onefam.method")


@register("onefam.dataset", "numbers", version="1")
class Numbers:
    @staticmethod
    def fingerprint():
        return "numbers-v1"


@register("onefam.method", "half", version="1")
def half(seed):
    return (seed + 10) / 2


class Trainer:
    def __init__(self, config, checkpoint=None, log=print):
        self.config, self.stop_requested = config, False

    def run(self):
        value = METHODS.get(self.config["method"])(self.config["seed"])
        return {"metrics": {"score": value}, "timing": {"train_seconds": 0.0, "eval_seconds": 0.0}, "details": {}}


FAMILY = Family(name="onefam", version="1", help="a family in one file",
                keys={"dataset": Key(str, REQUIRED, "d", choices=DATASETS),
                      "method": Key(str, REQUIRED, "m", choices=METHODS),
                      "seed": Key(int, REQUIRED, "s", minimum=0)},
                trainer="onefam:Trainer", metrics=(Metric("score", "higher"),))
'''

ONE_FILE_SUITE = """
name: onefam
family: onefam
plugins: [onefam.py]
paper: test
grid: {dataset: [numbers], method: [half], seed: [0, 1]}
"""


@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_a_family_declared_in_one_local_file_plans_runs_and_reports(tmp_path, cluster):
    (tmp_path / "onefam.py").write_text(textwrap.dedent(ONE_FILE_FAMILY))
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(ONE_FILE_SUITE))
    planned = cli_process(tmp_path, "plan", "suite.yaml")
    assert planned.returncode == 0 and "2 runs: 0 done" in planned.stdout, planned.stderr
    ran = cli_process(tmp_path, "run", "suite.yaml", "--cluster", cluster, "--quiet")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    records = [json.loads(path.read_text()) for path in (tmp_path / "results" / "onefam").glob("*/record.json")]
    assert sorted(record["metrics"]["score"] for record in records) == [5.0, 5.5]
    assert all(record["components"]["method"]["origin"] == f"plugin {tmp_path / 'onefam.py'}" for record in records)
    report = cli_process(tmp_path, "report", "suite.yaml", "--format", "csv")
    assert report.returncode == 0 and ",numbers,half,,score,5.25," in report.stdout, report.stderr


def test_a_plugin_that_fails_to_import_stops_the_run_though_no_run_uses_it(tmp_path):
    (tmp_path / "raises.py").write_text("raise RuntimeError('this plugin is broken')\n")
    suite = write(tmp_path, {}, ["raises.py"], ["protonet"])
    assert cli_process(tmp_path, "plan", str(suite)).returncode == 0  # planning reads it, and it declares nothing
    result = cli_process(tmp_path, "run", str(suite), "--cluster", "debug", "--quiet")
    assert_one_line_error(result, str(suite), "plugins[0]", "raises.py: import failed: RuntimeError: this plugin is broken")
    assert_nothing_written(tmp_path)


def test_list_warns_of_a_family_module_that_imports_torch(tmp_path):
    (tmp_path / "heavy.py").write_text(textwrap.dedent(ONE_FILE_FAMILY.replace('"""\nfrom', '"""\nimport torch\nfrom', 1)
                                                       .replace("onefam", "heavy")))
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(ONE_FILE_SUITE.replace("onefam", "heavy")))
    result = cli_process(tmp_path, "list", "suite.yaml")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: family heavy: its module ") and str(tmp_path / "heavy.py") in line
    assert "imports torch" in line
    assert cli_process(tmp_path, "list").stderr == ""  # the built-in families import none


def test_list_keys_shows_each_familys_value_keys_with_their_defaults(tmp_path):
    result = cli_process(tmp_path, "list", "--keys", "multitask")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("family multitask keys")
    assert "  lr = 0.001  [float > 0]  learning rate" in result.stdout
    assert "  seed (required)  [int >= 0]" in result.stdout
    assert "  cagrad_c = 0.5  [float >= 0; read by cagrad]  cagrad: radius c" in result.stdout
    assert not any(line.startswith(("  method", "  dataset", "  model ")) for line in lines)  # names, not values
    everything = cli_process(tmp_path, "list", "--keys").stdout
    assert "family fewshot keys" in everything and "family rl keys" in everything
    assert "  mgda_normalization = 'l2'  [str (one of loss+, l2, loss, none); read by mgda_ub]" in everything
    assert_one_line_error(cli_process(tmp_path, "list", "--keys", "multitusk"), "unknown family 'multitusk'")


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


def test_an_installed_plugin_is_found_listed_and_used(tmp_path, fresh, capsys, monkeypatch):
    site = tmp_path / "site"
    fake_distribution(site, "lab-methods", {"lab_method": METHOD.format(name="lab_method")})
    monkeypatch.syspath_prepend(str(site))
    suite = write(tmp_path, {}, [], ["lab_method"])
    listed = cli(capsys, "list")
    assert "lab_method (plugin lab-methods 0.3 (lab_method))" in listed.stdout, listed.stdout
    planned = cli(capsys, "plan", suite)
    assert planned.returncode == 0 and "lab_method" in planned.stdout, planned.stderr
    monkeypatch.setenv(plugins.AUTOLOAD_OFF, "1")
    plugins.reset()
    assert_one_line_error(cli(capsys, "plan", suite), "unknown method 'lab_method'")


def test_a_broken_installed_plugin_stops_only_the_suites_that_need_it(tmp_path, fresh, capsys, monkeypatch):
    site = tmp_path / "site"
    fake_distribution(site, "lab-broken", {"lab_broken": "def broken(:\n"})
    monkeypatch.syspath_prepend(str(site))
    listed = cli(capsys, "list")
    assert listed.returncode == 0 and "broken plugin: plugin lab-broken 0.3 (lab_broken)" in listed.stdout
    assert "SyntaxError" in listed.stdout
    fine = write(tmp_path, {}, [], ["protonet"])
    assert cli(capsys, "plan", fine).returncode == 0
    needs = write(tmp_path, {}, [], ["lab_method"])
    assert_one_line_error(cli(capsys, "plan", needs), "unknown method 'lab_method'", "plugin lab-broken 0.3 (lab_broken)",
                          "SyntaxError")


# ---------------------------------------------------------------- keys a plugin's component declares

KEYED = '''
from harness.api import register
from harness.fewshot.methods.protonet import ProtoNet


@register("fewshot.method", "keyed", version="1", uses={"eval_head": "centroid"},
          keys={"keyed_temperature": {"type": "float", "default": 1.0, "help": "keyed: logit scale", "minimum": 0.0},
                "keyed_impl": {"type": "str", "default": "ours", "choices": ["ours", "official"],
                               "versions": {"official": "1"}, "help": "keyed: our code or the official one"}})
class Keyed(ProtoNet):
    pass
'''


def plan_ids(capsys, suite: Path) -> dict:
    result = cli(capsys, "plan", suite, "--format", "json")
    assert result.returncode == 0, result.stderr
    return {run["config"]["method"]: run for run in json.loads(result.stdout)["runs"]}


def test_a_plugin_component_adds_its_own_config_keys_and_variants(tmp_path, fresh, capsys):
    suite = write(tmp_path, {"keyed.py": KEYED}, ["keyed.py"], ["keyed", "protonet"])
    text = suite.read_text()
    at_default = plan_ids(capsys, suite)
    assert at_default["keyed"]["config"]["keyed_temperature"] == 1.0 and at_default["keyed"]["config"]["keyed_impl"] == "ours"
    suite.write_text(text.replace("device: cpu}", "device: cpu, keyed_temperature: 2.0}"))
    changed = plan_ids(capsys, suite)
    assert changed["keyed"]["run_id"] != at_default["keyed"]["run_id"]
    assert changed["protonet"]["run_id"] == at_default["protonet"]["run_id"]  # protonet does not read it
    suite.write_text(text.replace("device: cpu}", "device: cpu, keyed_impl: official}"))
    official = plan_ids(capsys, suite)
    assert official["keyed"]["config"]["keyed_impl"] == "official"  # the variant is a config value
    assert official["keyed"]["run_id"] not in (at_default["keyed"]["run_id"], changed["keyed"]["run_id"])
    listed = cli(capsys, "list", suite).stdout
    assert "    keyed variants (keyed_impl): ours (default, v1), official v1" in listed
    suite.write_text(text.replace("device: cpu}", "device: cpu, keyed_temperature: -1.0}"))
    assert_one_line_error(cli(capsys, "plan", suite), "defaults.keyed_temperature: must be >= 0")
    suite.write_text(text.replace("device: cpu}", "device: cpu, keyed_impl: theirs}"))
    assert_one_line_error(cli(capsys, "plan", suite), "defaults.keyed_impl", "'theirs'")


def test_a_key_set_where_no_component_reads_it_is_left_out_of_ids_and_named_once(tmp_path, fresh, capsys):
    suite = write(tmp_path, {"keyed.py": KEYED}, ["keyed.py"], ["keyed", "protonet"])
    text = suite.read_text()
    before = plan_ids(capsys, suite)
    suite.write_text(text.replace("seed: [0]", "seed: [0, 1]").replace("device: cpu}", "device: cpu, keyed_temperature: 2.0}"))
    for command in (["plan"], ["status"]):
        result = cli(capsys, *command, suite)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [
            ("warning: keyed_temperature: set on 2 runs whose components do not use it (methods protonet; only keyed "
             "declares it): left out of their run ids")]
    runs = json.loads(cli(capsys, "plan", suite, "--format", "json").stdout)["runs"]
    ids = {(run["config"]["method"], run["config"]["seed"]): run["run_id"] for run in runs}
    assert ids["protonet", 0] == before["protonet"]["run_id"]  # the key it ignores left its id alone
    assert ids["keyed", 0] != before["keyed"]["run_id"]
    suite.write_text(text)
    assert cli(capsys, "plan", suite).stderr == ""  # at its default: nothing to say


def test_a_plugin_component_may_read_a_key_of_the_family_without_changing_any_id(tmp_path, fresh, capsys):
    suite = write(tmp_path, {}, [], ["protonet"])
    before = plan_ids(capsys, suite)["protonet"]["run_id"]
    reads_lr = KEYED.replace('"keyed_temperature": {"type": "float", "default": 1.0', '"lr": {"type": "float", "default": 0.5')
    plugins.reset()
    suite = write(tmp_path, {"keyed.py": reads_lr}, ["keyed.py"], ["keyed", "protonet"])
    runs = plan_ids(capsys, suite)
    assert runs["protonet"]["run_id"] == before
    assert runs["keyed"]["config"]["lr"] == plugins.family("fewshot").declared_keys["lr"].default  # the family's default
    suite.write_text(suite.read_text().replace("device: cpu}", "device: cpu, lr: 0.123}"))
    assert plan_ids(capsys, suite)["protonet"]["run_id"] != before  # the family's own key counts for every run
