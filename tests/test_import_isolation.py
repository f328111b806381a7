"""Our folders are never importable by their generic names inside the WebUI.

The WebUI runs every extension in one interpreter and puts an extension's
folder on sys.path only while loading its scripts. The reference extension
ships a top-level motion_module.py; other extensions import model, demo,
tests... Our code therefore reaches its own packages only relatively, below
one uniquely named package that scripts/animatediff.py creates, and never
touches sys.path."""

import ast
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
OURS = ("motion_module", "animatediff_webui", "model", "demo", "tests", "benchmarks")


def _absolute_imports_of_ours(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in OURS)


def test_shipped_code_imports_its_own_packages_relatively():
    files = [*ROOT.joinpath("motion_module").rglob("*.py"), *ROOT.joinpath("animatediff_webui").rglob("*.py"),
             ROOT / "scripts" / "animatediff.py"]
    offenders = {str(f.relative_to(ROOT)): names for f in files if (names := list(_absolute_imports_of_ours(f)))}
    assert offenders == {}
    script = ast.parse((ROOT / "scripts" / "animatediff.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(script) if isinstance(n, ast.Attribute) and n.attr == "path"
                and isinstance(n.value, ast.Name) and n.value.id == "sys"]


def _bootstrap_source():
    """scripts/animatediff.py's package bootstrap, as the WebUI would run it."""
    source = (ROOT / "scripts" / "animatediff.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_extension_package")
    return ast.get_source_segment(source, fn)


def test_another_extensions_modules_neither_shadow_nor_are_shadowed(tmp_path):
    other = tmp_path / "other-extension"
    other.mkdir()
    (other / "motion_module.py").write_text("WHO = 'reference extension'\n")
    (other / "model.py").write_text("WHO = 'someone else'\n")
    code = textwrap.dedent(f"""
        import os, sys, types, importlib
        sys.path.insert(0, {str(other)!r})
        import motion_module, model        # another extension loaded first
        path_before = list(sys.path)
        EXTENSION_ROOT = {str(ROOT)!r}
    """) + _bootstrap_source() + textwrap.dedent("""
        package = _extension_package()
        params = importlib.import_module(package + ".motion_module.request.params")
        video = importlib.import_module(package + ".motion_module.video")
        assert params.AnimateDiffParams(enable=True).resolve().video_length == 16
        assert sys.modules["motion_module"].WHO == "reference extension"   # theirs untouched
        import model
        assert model.WHO == "someone else"
        assert sys.path == path_before                                     # nothing of ours added
        assert params.__name__.startswith(package + ".") and package != "motion_module"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _relative_imports(path, package):
    """The modules of `package` that one of its files imports (also inside functions)."""
    here = path.relative_to(ROOT).with_suffix("").parts
    parent = here[:-1] if here[-1] != "__init__" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = parent[:len(parent) - node.level + 1]
        targets = [".".join(base + tuple(node.module.split(".")))] if node.module else \
            [".".join(base + (alias.name,)) for alias in node.names]
        yield from (t for t in targets if t.split(".")[0] == package)


def test_no_module_imports_itself_back_through_others():
    """Small modules with one job and no import circles, in the engine and in the glue."""
    for package in ("motion_module", "animatediff_webui"):
        modules = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
                   for f in ROOT.joinpath(package).rglob("*.py")}
        graph = {name: {t for t in _relative_imports(f, package) if t in modules and t != name}
                 for name, f in modules.items()}
        cycles = []

        def visit(node, trail):
            if node in trail:
                cycles.append(trail[trail.index(node):] + [node])
                return
            for target in sorted(graph[node]):
                visit(target, trail + [node])

        for start in sorted(graph):
            visit(start, [])
        assert cycles == [], f"{package}: " + "; ".join(" -> ".join(c) for c in cycles[:5])
