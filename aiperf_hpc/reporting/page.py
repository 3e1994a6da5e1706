"""HTML building blocks of the report: one self-contained page, escaped text, tables and images.

The page must open offline, years later, from a shared file system: it has no script, loads no
font, style sheet or image from anywhere (images are `data:` URIs, the style sheet is inline), and
its Content-Security-Policy forbids any fetch, so a browser reports, rather than performs, one that
slips in. Every piece of text goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

# Nothing may be fetched: images only as data: URIs, styles only inline.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.warning { background: #fff4e5; border-left: 4px solid #e69500; padding: 0.5em 1em; }
.scroll { overflow-x: auto; }
.muted { color: #777; font-size: 0.85em; }
"""


def render_page(title: str, subtitle: str, sections: Iterable[str]) -> str:
    """The whole document: `sections` are HTML fragments, already escaped, in order."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{text(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{text(title)}</h1>",
            f'<p class="muted">{text(subtitle)}</p>',
            *sections,
            "</body>",
            "</html>",
            "",
        ]
    )


def text(value: object) -> str:
    """`value` as escaped text."""
    return html.escape(str(value), quote=True)


def heading(title: str) -> str:
    return f"<h2>{text(title)}</h2>"


def paragraph(content: str, *, css_class: str | None = None) -> str:
    """A paragraph of escaped `content`."""
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{text(content)}</p>"


def link(href: str, label: str) -> str:
    """A link to a relative path (another report of the same tree), escaped."""
    return f'<a href="{text(href)}">{text(label)}</a>'


def format_value(value: object) -> str:
    """A cell's text: counts with thousands separators, other numbers with two decimals (three
    significant digits below 1, so 0.0123 ms stays readable), None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, raw_first_column: bool = False) -> str:
    """A table with one header row. Numbers (and None) are right-aligned and formatted by
    `format_value`; other cells are escaped text, or used as is in the first column when
    `raw_first_column` (for links built with `link`)."""
    lines = ['<div class="scroll"><table>', "<tr>" + "".join(f"<th>{text(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            if index == 0 and raw_first_column:
                cells.append(f"<td>{value}</td>")
            elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                cells.append(f'<td class="num">{text(format_value(value))}</td>')
            else:
                cells.append(f"<td>{text(format_value(value))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def image(png: bytes, *, alt: str, caption: str) -> str:
    """A figure with the PNG embedded as a base64 data URI."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{text(alt)}">'
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )
