"""RESULTS.md's newest section, written by `run.py --results-md` from a run's report.

The generated section sits between two markers at the top of the file and is replaced by
the next run; the sections below the line "History" are earlier runs and one-off
measurements, kept as they were written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

START = "<!-- run.py --results-md: the newest run; the next one replaces this section -->"
END = "<!-- /run.py --results-md -->"
HISTORY = (
    "---\n\n# History\n\nEarlier runs and one-off measurements, newest first, as they were written "
    "(figures from other machines and loads: compare within a section, not across).\n"
)
TITLE = "# Benchmark results\n"


def markdown(report: str) -> str:
    """run.py's report as markdown: tables stay, headings go bold, other lines are bullets."""
    out: list[str] = []
    for line in report.splitlines():
        if out and out[-1].startswith("|") and not line.startswith("|"):
            out.append("")  # a table ends only at a blank line
        if not line.strip() or line.startswith("|"):
            out.append(line)
        elif line.endswith(":"):
            out.append(f"**{line}**")
        else:
            out.append(f"- {line.strip()}")
    return "\n".join(out)


def short_version(name: str, text: str) -> str:
    """`pip 26.3 from /path (python 3.11)` -> `pip 26.3`; the name once."""
    text = re.sub(r" from /.*| Copyright .*| \[.*?\]", "", text).replace(",", "")
    return text if text.lower().startswith(name.lower()) else f"{name} {text}"


def section(data: dict, report: str) -> str:
    meta = data["meta"]
    m = meta["machine"]
    versions = ", ".join(short_version(k, v) for k, v in meta["versions"].items() if v)
    load = lambda values: " / ".join(f"{v:.1f}" for v in values)  # noqa: E731
    return "\n".join(
        [
            START,
            f"## {meta['date'][:10]}: `run.py` side by side (issue 30's targets)",
            "",
            f"- **Command** (repository root, the dev virtualenv's Python; {meta['seconds']:.0f} s in all):",
            "",
            "  ```sh",
            f"  {meta['command']}",
            "  ```",
            "",
            f"- **Date:** {meta['date']}. **Machine:** {m['cpus']} x {m['cpu']}, {m['memory_gb']} GB, "
            f"Linux {m['kernel']}; {versions}.",
            f"- **Load average** (1 / 5 / 15 min) before: {load(m['load_avg_at_start'])}, "
            f"after: {load(meta['load_avg_after'])}.",
            "- **Figures:**",
            "",
            markdown(report),
            END,
            "",
        ]
    )


def write_section(path: Path, new: str) -> None:
    """Replace the generated section, or put it on top with the older ones below History."""
    text = path.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + new.rstrip("\n") + rest.split(END, 1)[1]
    else:
        body = text[len(TITLE) :].lstrip("\n") if text.startswith(TITLE) else text
        text = f"{TITLE}\n{new}\n{HISTORY}\n{body}"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
