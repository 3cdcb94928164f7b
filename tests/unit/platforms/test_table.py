"""platforms/README.md shows what each adapter really supports."""
from pathlib import Path

from platforms.table import markdown

README = Path(__file__).resolve().parents[3] / "platforms" / "README.md"


def test_the_readme_table_is_generated_from_the_adapters():
    assert markdown() in README.read_text(), (
        "platforms/README.md is out of date: paste the output of `python -m platforms.table`")
