"""Writes the report's pages: a self-contained ``index.html`` and a ``summary.md``.

``index.html`` embeds every figure as a base64 PNG and carries its own CSS: it opens
from disk with no server and no network. The PNG and SVG files beside it are links for
those who want the figures alone.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import string
from pathlib import Path

import pandas as pd


@dataclasses.dataclass(frozen=True)
class FigureFile:
    name: str
    title: str
    caption: str
    png: Path
    svg: Path


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    title: str
    caption: str
    frame: pd.DataFrame


PAGE_WIDTH_PX = 1500
"""The widest the page's ``main`` gets, and the window it is laid out for."""
_MAIN_PADDING_PX, _FIGURE_PADDING_PX, _FIGURE_BORDER_PX, _SCROLLBAR_PX = 32, 10, 1, 17
FIGURE_AREA_PX = PAGE_WIDTH_PX - _SCROLLBAR_PX - 2 * (
    _MAIN_PADDING_PX + _FIGURE_PADDING_PX + _FIGURE_BORDER_PX)
"""The width an image has inside a figure's frame in a window of ``PAGE_WIDTH_PX`` with a
scrollbar (1,397 px): a figure no wider is shown at its own size there, neither shrunk
(its text smaller than the other figures') nor cut (``bench.report.figures.MAX_WIDTH``)."""

STYLE = string.Template("""
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d232a; background: #fafbfc; line-height: 1.45; }
main { max-width: ${page}px; margin: 0 auto; padding: 1.5rem ${main}px 4rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d8dee4; padding-bottom: .3rem; }
nav ol { columns: 2; font-size: .92rem; }
figure { margin: 0; background: white; border: ${border}px solid #e1e4e8; border-radius: 6px;
         padding: ${figure}px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption, .caption { font-size: .92rem; color: #444; margin: .4rem 0; }
.files { font-size: .85rem; }
table { border-collapse: collapse; font-size: .85rem; background: white; margin: .5rem 0; }
th, td { border: 1px solid #e1e4e8; padding: .25rem .55rem; text-align: right; }
th { background: #f1f3f5; }
.note { font-size: .9rem; color: #6a4b00; }
.lede { color: #444; max-width: 60rem; }
""").substitute(page=PAGE_WIDTH_PX, main=_MAIN_PADDING_PX, figure=_FIGURE_PADDING_PX,
                border=_FIGURE_BORDER_PX)


def _png_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table_html(name: str, frame: pd.DataFrame) -> str:
    """The table, with its text columns left-aligned and numbers right-aligned."""
    text = [i + 1 for i, column in enumerate(frame.columns)
            if not pd.api.types.is_numeric_dtype(frame[column])
            or pd.api.types.is_bool_dtype(frame[column])]
    style = "".join(f"#{name} td:nth-child({i}), #{name} th:nth-child({i}) {{ text-align: left; }}"
                    for i in text)
    return f"<style>{style}</style>" + frame.to_html(
        index=False, border=0, float_format="{:.4g}".format, na_rep="—", escape=True)


def write_html(path: Path, title: str, lede: str, figures: list[FigureFile],
               tables: list[Table], notes: list[str]) -> None:
    esc = html.escape
    toc = [f'<li><a href="#{f.name}">{esc(f.title)}</a></li>' for f in figures]
    toc += [f'<li><a href="#{t.name}">{esc(t.title)}</a></li>' for t in tables]
    body = [f"<h1>{esc(title)}</h1>", f'<p class="lede">{esc(lede)}</p>',
            "<nav><ol>" + "".join(toc) + "</ol></nav>"]
    for figure in figures:
        body.append(
            f'<section id="{figure.name}"><h2>{esc(figure.title)}</h2><figure>'
            f'<img src="{_png_data(figure.png)}" alt="{esc(figure.title)}">'
            f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
            f'<p class="files">Files: <a href="{figure.png.name}">{figure.png.name}</a> · '
            f'<a href="{figure.svg.name}">{figure.svg.name}</a></p></section>')
    for table in tables:
        body.append(f'<section id="{table.name}"><h2>{esc(table.title)}</h2>'
                    f'<p class="caption">{esc(table.caption)}</p>{_table_html(table.name, table.frame)}'
                    "</section>")
    if notes:
        body.append('<section id="notes"><h2>Notes</h2><ul>'
                    + "".join(f'<li class="note">{esc(n)}</li>' for n in notes) + "</ul></section>")
    path.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                    f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
                    f"<body><main>{''.join(body)}</main></body></html>\n", encoding="utf-8")


def _markdown_cell(value) -> str:
    """4 significant digits, "—" for missing; a "|" inside a cell would split it."""
    if isinstance(value, float):
        return "—" if value != value else f"{value:.4g}"
    if value is None or value is pd.NA:
        return "—"
    return str(value).replace("|", "\\|")


def write_markdown(path: Path, title: str, lede: str, figures: list[FigureFile],
                   tables: list[Table], notes: list[str]) -> None:
    lines = [f"# {title}", "", lede, ""] + (["## Figures", ""] if figures else [])
    for figure in figures:
        lines += [f"### {figure.title}", "", figure.caption, "",
                  f"![{figure.title}]({figure.png.name})", ""]
    for table in tables:
        lines += [f"## {table.title}", "", table.caption, "",
                  table.frame.map(_markdown_cell).to_markdown(index=False, disable_numparse=True),
                  ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
