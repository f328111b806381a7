"""Nothing from a request can reach a shell: every subprocess the extension
starts (ffmpeg, gifsicle) gets an argument list, never a command string, and
no code path uses a shell. Checked on the source itself, so a new call site
is checked too."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("motion_module", "animatediff_webui", "scripts") for p in (ROOT / folder).rglob("*.py"))
STARTERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}
SHELLS = {("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "spawnl")}


def _calls(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name):
            yield node.func.value.id, node.func.attr, node


def test_the_sources_are_found():
    assert len(SOURCES) > 40


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_subprocesses_get_argument_lists_and_no_shell(path):
    for module, name, call in _calls(path):
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        assert (module, name) not in SHELLS, f"{where}: {module}.{name} runs a shell"
        if module != "subprocess":
            continue
        assert name not in ("getoutput", "getstatusoutput"), f"{where}: subprocess.{name} runs a shell"
        if name in STARTERS:
            for keyword in call.keywords:
                assert not (keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant)
                                                             and keyword.value.value is False)), f"{where}: shell="
            command = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "args"), None)
            assert not isinstance(command, (ast.Constant, ast.JoinedStr, ast.BinOp)), \
                f"{where}: the command is a string; pass a list of arguments"
