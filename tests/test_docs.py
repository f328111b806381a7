"""README facts that are derived from declarations must not drift from them."""

import pathlib
import re

from motion_module.request import docs
from motion_module.request.params import PARAM_ORDER, SPECS

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tables_are_the_generated_ones():
    text = README.read_text(encoding="utf-8")
    assert docs.tables_in(text) == docs.expected(), "run: python3 -m motion_module.request.docs --write"


def test_parameter_table_has_a_row_per_parameter_in_positional_order():
    rows = docs.parameter_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(PARAM_ORDER)


def test_api_listing_matches_the_declarations():
    listing = docs.parameter_listing()
    assert [entry["name"] for entry in listing] == list(PARAM_ORDER)
    by_name = {entry["name"]: entry for entry in listing}
    assert by_name["closed_loop"]["choices"] == list(SPECS["closed_loop"].kind.choices)
    assert (by_name["fps"]["low"], by_name["fps"]["high"], by_name["fps"]["default"]) == (1, 240, 8)
    assert by_name["batch_size"]["aliases"] == ["context_batch_size"]


def test_contents_line_links_every_section():
    text = README.read_text(encoding="utf-8")
    contents = text[text.index("Contents:"):text.index("\n\n", text.index("Contents:"))]
    linked = re.findall(r"\]\(#([a-z0-9-]+)\)", contents)
    titles = re.findall(r"(?m)^## (.+)$", text)
    anchors = [re.sub(r"[^a-z0-9 -]", "", t.lower()).replace(" ", "-") for t in titles]
    assert linked == anchors


def test_help_is_help_and_unknown_options_are_refused(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        docs.main(["--help"])
    assert exit_info.value.code == 0 and "--write" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        docs.main(["--wirte"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --wirte" in capsys.readouterr().err
