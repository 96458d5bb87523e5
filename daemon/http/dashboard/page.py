"""The dashboard's HTML: the page in the viewer's language, with the first data inside.

The page must never be blank while data loads (docs/dashboard.md): a public dashboard
sends the body of data.json inside the HTML, so the first paint already shows the plant;
a private one (or a page whose data could not be read) shows a loading state until the
script has a token and the data.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

LANGUAGES = ("en", "fr")
# What the page says before its script runs: the title and the loading state.
_TEXT = {
    "en": {"title": "Solar plant", "loading": "Loading the plant's data…"},
    "fr": {"title": "Centrale solaire", "loading": "Chargement des données de la centrale…"},
}
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def language(accept_language: str | None) -> str:
    """The page's language from an Accept-Language header (RFC 9110 §12.5.4): the supported
    language with the highest weight, English when none is asked or none is supported."""
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        match = _RANGE.match(part)
        if match is None:
            continue
        try:
            q = float(match.group(2)) if match.group(2) is not None else 1.0
        except ValueError:
            continue
        primary = match.group(1).lower()
        # Equal weights keep the header's order: the first one listed wins.
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def _script_json(value: Any) -> str:
    """JSON that can sit inside a <script> element: no "</script>", no "<!--"."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def header_title(names: Sequence[str], lang: str) -> str:
    """The header: the plant's name, or the generic title for several plants."""
    return names[0] if len(names) == 1 else _TEXT[lang]["title"]


def render(
    template: str,
    *,
    public: bool,
    lang: str,
    names: Sequence[str],
    data: Mapping[str, Any] | None,
) -> str:
    """The page: `data` is data.json's body (public dashboards) or None (loading state)."""
    title = header_title(names, lang) if public else _TEXT[lang]["title"]
    initial = (
        ""
        if data is None
        else f'<script id="heliod-data" type="application/json">{_script_json(data)}</script>'
    )
    values = {
        "{{dashboard_public}}": str(public).lower(),
        "{{lang}}": lang,
        "{{title}}": html.escape(title, quote=False),
        "{{loading}}": html.escape(_TEXT[lang]["loading"], quote=False),
        "{{initial_data}}": initial,
    }
    out = template
    for key, value in values.items():
        out = out.replace(key, value)
    return out
