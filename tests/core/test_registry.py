"""The registry reads each algorithm's declared spec; the catalog that keeps the CLI fast is
generated from those specs; the package layers import downwards only."""

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import rlsuite
from rlsuite.core import registry
from rlsuite.core.config import BaseConfig
from rlsuite.core.spec import AlgorithmSpec

PACKAGE = Path(rlsuite.__file__).parent
SPECS = {name: registry.spec(name) for name in registry.ALGORITHMS}


def test_the_catalog_is_generated_from_the_specs():
    assert registry.CATALOG_FILE.read_text() == registry.render_catalog(), "run scripts/update_catalog.sh"
    assert set(registry.discover()) == set(registry.ALGORITHMS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_is_complete_and_its_presets_are_valid_configs(name):
    spec = SPECS[name]
    assert isinstance(spec, AlgorithmSpec) and spec.name == name and spec.summary
    assert dataclasses.is_dataclass(spec.config) and issubclass(spec.config, BaseConfig)
    assert spec.config.__dataclass_params__.frozen
    fields = {f.name for f in dataclasses.fields(spec.config)}
    assert spec.budget_field in fields
    key = "task" if "task" in fields else "env"  # language-model presets are keyed by task
    for env in spec.presets:
        assert getattr(spec.preset(env), key) == env
    assert (spec.load is None) == bool(spec.no_policy_reason)
    assert spec.resumable or "rlsuite resume" not in spec.not_resumable_reason


def imports_of(path: Path) -> set[str]:
    """Every rlsuite module a file imports, at any depth in the file (type-checking imports aside)."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # drop `if TYPE_CHECKING:` blocks: annotations only
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlsuite"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rlsuite")}
    return found


def module_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = imports_of(path)
    return graph


def test_ops_import_nothing_from_the_rest_of_rlsuite():
    for module, imports in module_graph().items():
        if module.startswith("rlsuite.ops"):
            assert imports <= {"rlsuite.errors"} | {m for m in imports if m.startswith("rlsuite.ops")}, (module, imports)


def test_core_imports_no_envs_rollout_algos_or_api():
    for module, imports in module_graph().items():
        if module.startswith("rlsuite.core") and module != "rlsuite.core.registry":  # it discovers rlsuite.algos
            assert not any(m.startswith(("rlsuite.envs", "rlsuite.rollout", "rlsuite.lm", "rlsuite.algos", "rlsuite.api", "rlsuite.cli")) for m in imports), (module, imports)


def test_lm_plumbing_imports_no_algorithm_api_or_cli():
    for module, imports in module_graph().items():
        if module.startswith(("rlsuite.lm", "rlsuite.envs", "rlsuite.rollout")):
            assert not any(m.startswith(("rlsuite.algos", "rlsuite.api", "rlsuite.cli")) for m in imports), (module, imports)


def test_scale_workers_import_no_algorithm_api_or_cli():
    """Ray's rollout workers and Ape-X sit under the algorithms that use them; only the sweep
    (scale/sweep.py) runs whole trainings and may sit on top."""
    for module, imports in module_graph().items():
        if module.startswith("rlsuite.scale") and module != "rlsuite.scale.sweep":
            assert not any(m.startswith(("rlsuite.algos", "rlsuite.api", "rlsuite.cli")) for m in imports), (module, imports)


def test_no_import_cycles():
    graph = module_graph()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for child in graph.get(node, ()):
            child = child if child in graph else child.rsplit(".", 1)[0]
            if child == node or child not in graph or child in ("rlsuite",):
                continue
            if state.get(child) == 1:
                pytest.fail(f"import cycle: {' -> '.join(path + [child])}")
            if child not in state:
                visit(child, path + [child])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_help_and_list_never_import_torch():
    code = "import sys; from rlsuite.cli import main; main(['list']); assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ppo" in result.stdout and "CartPole-v1" in result.stdout
    code = "import sys\nfrom rlsuite.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
