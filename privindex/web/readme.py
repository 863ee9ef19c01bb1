"""A README on a page: its images from other sites as the `readme_images` setting says.

Descriptions are rendered and sanitised once, at upload (packages/releases.py); what to
do with the images they load from other sites is decided when a page is shown, since the
setting and the reader's language may change. An image is never silently dropped:
"link" puts a labelled link in its place, "hide" a short note, "show" keeps the image
(the page's Content-Security-Policy then allows https images, `policy`). An image with
a relative or non-https address cannot load from here and gets the note whatever the
setting.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

from flask_babel import get_locale
from flask_babel import gettext as _

from privindex.api.headers import CONTENT_SECURITY_POLICY

MODES = ("hide", "link", "show")
SHOW_POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", "img-src 'self' data: https:")


def policy(mode: str) -> str:
    """The Content-Security-Policy of a page showing a README under this setting."""
    return SHOW_POLICY if mode == "show" else CONTENT_SECURITY_POLICY


def fit_images(html: str, mode: str) -> str:
    """The README's HTML with each <img> kept, linked or noted (see the module's text)."""
    if "<img" not in html:
        return html
    return _fit_images(html, mode, str(get_locale()))


@lru_cache(maxsize=64)  # a page view parses its README once per change of setting or language
def _fit_images(html: str, mode: str, _locale: str) -> str:
    finder = _ImageFinder()
    finder.feed(html)
    finder.close()
    line_starts = [0] + [m.end() for m in re.finditer("\n", html)]  # as HTMLParser counts lines
    out, done = [], 0
    for (line, column), tag, attrs, in_link in finder.images:
        start = line_starts[line - 1] + column
        out.append(html[done:start])
        out.append(_replacement(tag, attrs, mode, in_link))
        done = start + len(tag)
    out.append(html[done:])
    return "".join(out)


def _replacement(tag: str, attrs: dict[str, str | None], mode: str, in_link: bool) -> str:
    src = (attrs.get("src") or "").strip()
    alt = " ".join((attrs.get("alt") or "").split()) or urlsplit(src).path.rpartition("/")[2] or src
    if urlsplit(src).scheme != "https" or mode == "hide":
        note = escape(_("Image left out: %(image)s", image=alt))
        return f'<span class="readme-image-note">[{note}]</span>'
    if mode == "show":
        return tag
    label = escape(_("Image: %(image)s", image=alt))
    if in_link:  # a badge inside a link: a link may not hold another
        return f'<span class="readme-image-link">[{label}]</span>'
    return (
        f'<a class="readme-image-link" href="{escape(src)}" rel="nofollow noopener noreferrer">[{label}]</a>'
    )


class _ImageFinder(HTMLParser):
    """Where each <img> tag is (line, column), its exact text and attributes, and whether
    it sits inside a link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[tuple[int, int], str, dict[str, str | None], bool]] = []
        self._links = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._links += 1
        elif tag == "img":
            self.images.append((self.getpos(), self.get_starttag_text() or "", dict(attrs), self._links > 0))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._links:
            self._links -= 1
