"""Showing the page in a notebook: tables as plain HTML, headings, notes, the title,
and sections that may lack data (``optional_section``). Text comes from
``povdyn.labels``; numbers arrive already formatted (``povdyn.tables``)."""
from __future__ import annotations

import html as _html

import pandas as pd

from .formatting import to_html
from .labels import label

def show(table: pd.DataFrame, caption: str | None = None):
    """Display a (suppressed, labelled) table in a notebook as plain HTML, with the
    table's ``attrs["note"]`` (if any) under it."""
    from IPython.display import HTML, display

    note_text = table.attrs.get("note")
    extra = f'<p class="table-note">{_html.escape(note_text)}</p>' if note_text else ""
    display(HTML(to_html(table, caption) + extra))


def pending(section: str, lang: str = "vi"):
    """Display a clear "being updated" note for a section without enough data."""
    from IPython.display import HTML, display

    text = f"{label('pending', lang)}: {section}."
    display(HTML(f'<p class="pending">{_html.escape(text)}</p>'))


def heading(key: str, lang: str = "vi", level: int = 2):
    """Display a section heading (a Markdown heading, so it enters the table of contents)."""
    from IPython.display import Markdown, display

    from .labels import section

    display(Markdown("#" * level + " " + section(key, lang)))


def note(key: str, lang: str = "vi", **fields):
    """Display a short explanatory paragraph of the report (labels.TEXTS)."""
    from IPython.display import Markdown, display

    from .labels import text

    display(Markdown(text(key, lang, **fields)))


def title(region: str, period, lang: str = "vi"):
    """Display the page title and introduction for a region and period."""
    from IPython.display import Markdown, display

    from .labels import region_label, text

    name = region_label(region, lang)
    display(Markdown(f"# {label('report_title', lang)}: {name}, {period}\n\n"
                     + text("intro", lang, region=name, period=period)))


def optional_section(run, section_name: str, lang: str = "vi"):
    """Run a report section that may lack data for a region. Only the documented
    not-enough-data condition (``povdyn.errors.NotEnoughDataError``: no support records,
    no programme with supported households, no household at the period) shows the
    "being updated" note, with the reason in the log; any other exception fails the page
    (a bug must never hide behind the note)."""
    import sys

    from .errors import NotEnoughDataError

    try:
        return run()
    except NotEnoughDataError as exc:
        print(f"section {section_name!r}: not enough data: {exc}", file=sys.stderr)
        pending(section_name, lang)
        return None
