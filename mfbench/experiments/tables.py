"""`mfbench table-html`: a result table CSV as an HTML page, so the Snakemake report shows it
inline (the report renders HTML and images; any other file is only offered for download)."""
from __future__ import annotations

import html

_STYLE = ("<style>body{font-family:sans-serif;font-size:12px}table{border-collapse:collapse}"
          "td,th{padding:2px 7px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}"
          "th{position:sticky;top:0;background:#f4f4f4}</style>")


def render(csv: str, title: str = "") -> str:
    """The whole table, numbers to 4 significant digits, empty cells blank."""
    from mfbench import results_io

    df = results_io.read_table(csv)
    table = df.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4g}")
    title = html.escape(title or csv)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{_STYLE}</head><body>"
            f"<h3>{title}</h3><p>{len(df)} rows; data: <code>{html.escape(csv)}</code></p>{table}</body></html>")


def main(csvs: list[str], outs: list[str], title: str = "") -> None:
    from mfbench import files
    from mfbench.config import ConfigError

    if len(csvs) != len(outs):
        raise ConfigError(f"give one --out per table: {len(csvs)} CSV(s), {len(outs)} --out file(s)")
    for csv, out in zip(csvs, outs):
        files.write_text(render(csv, title), out)


def add_command(sub) -> None:
    p = sub.add_parser("table-html", help="render result table CSVs as HTML (the report shows them inline)")
    p.add_argument("csvs", nargs="+", help="table CSVs")
    p.add_argument("--out", nargs="+", required=True, help="HTML files, one per CSV, in the same order")
    p.add_argument("--title", default="", help="heading (default: each CSV's path)")
    p.set_defaults(func=lambda a: main(a.csvs, a.out, a.title))
