"""The activity timeline: commits per day, stacked and coloured by author, as inline SVG.

Drawn on the server from the commits' dates and authors, so the picture
needs no JavaScript and no charting library. Each bar links to the project
(or object) as it was after the newest commit of its day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

# Okabe & Ito's palette: told apart by people with the common colour blindnesses.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHERS_COLOUR = "#9a9a9a"
WIDTH, HEIGHT = 960, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 8, 10, 28
# A lone day in a short span is a bar, not a wall.
_MAX_BAR_WIDTH = 28
# Beyond this many days, a bar is a week.
_MAX_DAILY_BARS = 180


@dataclasses.dataclass(frozen=True)
class Event:
    """One commit as the timeline sees it."""

    when: dt.datetime
    author: str
    commit_id: str


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def colours(events: Sequence[Event]) -> dict[str, str]:
    """Author -> colour; the busiest authors get the palette, the rest share grey."""
    ranked = [author for author, _ in Counter(e.author for e in events).most_common()]
    return {author: PALETTE[i] if i < len(PALETTE) else OTHERS_COLOUR for i, author in enumerate(ranked)}


def draw(
    events: Sequence[Event], link: Callable[[str], str], *, label: str = "commits", marked: str | None = None
) -> str:
    """Return an ``<svg>`` element of ``events`` per day (or per week over long spans).

    ``link(commit_id)`` gives the address a bar leads to, called with the
    newest commit of the bar's span. The span holding commit ``marked`` (the
    commit a time-travelling page shows) is shaded.
    """
    if not events:
        return (
            f'<svg class="timeline" viewBox="0 0 {WIDTH} 40" role="img" aria-label="no {label}">'
            f'<text x="{WIDTH // 2}" y="24" text-anchor="middle">no {label}</text></svg>'
        )
    days = [e.when.date() for e in events]
    first, last = min(days), max(days)
    span_days = (last - first).days + 1
    step = 1 if span_days <= _MAX_DAILY_BARS else 7
    buckets = (span_days + step - 1) // step
    counts, newest = _count(events, days, first, step)
    palette = colours(events)
    tallest = max(sum(c.values()) for c in counts.values())
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = plot_w / buckets
    bar_w = min(slot, _MAX_BAR_WIDTH)
    gap = 1 if bar_w > 3 else 0
    unit = "day" if step == 1 else "week"
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_esc(label)} per {unit}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" y2="{_TOP + plot_h}"/>',
        f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{tallest}</text>',
        f'<text class="tick" x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for event, day in zip(events, days, strict=True):
        if marked is not None and event.commit_id == marked:
            parts.append(_shade((day - first).days // step * slot, slot, plot_h, marked))
    for bucket in sorted(counts):
        start = first + dt.timedelta(days=bucket * step)
        span = start.isoformat() if step == 1 else f"week of {start.isoformat()}"
        x = _LEFT + bucket * slot + (slot - bar_w) / 2
        y: float = _TOP + plot_h
        total = sum(counts[bucket].values())
        who = ", ".join(f"{author} {n}" for author, n in counts[bucket].most_common())
        title = (
            f"{span}: {total} {label} ({who}); click to see the state after {newest[bucket].commit_id[:7]}"
        )
        parts.append(f'<a href="{_esc(link(newest[bucket].commit_id))}"><title>{_esc(title)}</title>')
        for author, n in sorted(counts[bucket].items(), key=lambda item: -item[1]):
            h = max(plot_h * n / tallest, 1.5)
            y -= h
            parts.append(
                f'<rect x="{x + gap / 2:.1f}" y="{y:.1f}" width="{max(bar_w - gap, 1):.1f}" '
                f'height="{h:.1f}" fill="{palette[author]}"/>'
            )
        parts.append("</a>")
    parts.extend(_date_ticks(first, last, step, slot))
    parts.append("</svg>")
    return "".join(parts)


def _count(
    events: Sequence[Event], days: list[dt.date], first: dt.date, step: int
) -> tuple[dict[int, Counter], dict[int, Event]]:
    """Return each bar's commits per author, and each bar's newest event."""
    counts: dict[int, Counter] = defaultdict(Counter)
    newest: dict[int, Event] = {}
    for event, day in zip(events, days, strict=True):
        bucket = (day - first).days // step
        counts[bucket][event.author] += 1
        if bucket not in newest or event.when > newest[bucket].when:
            newest[bucket] = event
    return counts, newest


def _shade(offset: float, slot: float, plot_h: float, marked: str) -> str:
    """The shading of the span holding the commit a time-travelling page shows."""
    x = _LEFT + offset
    return (
        f'<rect class="here" x="{x:.1f}" y="{_TOP - 6}" width="{slot:.1f}" height="{plot_h + 6}">'
        f"<title>the state shown: after {_esc(marked[:7])}</title></rect>"
    )


def _date_ticks(first: dt.date, last: dt.date, step: int, slot: float) -> list[str]:
    """Labels under the axis: month starts, or a few evenly spread days over a short span."""
    span = (last - first).days + 1
    if span <= 31:
        every = max(1, span // 8)
        marks = [first + dt.timedelta(days=d) for d in range(0, span, every)]
        fmt = "%b %d"
    else:
        marks = []
        month = dt.date(first.year, first.month, 1)
        while month <= last:
            if month >= first:
                marks.append(month)
            month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if len(marks) > 12:
            marks = [m for m in marks if m.month in (1, 4, 7, 10)]
        marks = marks or [first]
        fmt = "%b %Y"
    out = []
    for mark in marks:
        x = _LEFT + ((mark - first).days / step) * slot + slot / 2
        label = mark.strftime(fmt)
        out.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{label}</text>')
    return out


def legend(events: Sequence[Event]) -> list[tuple[str, str, int]]:
    """(author, colour, commits) of each author, busiest first."""
    palette = colours(events)
    return [(author, palette[author], n) for author, n in Counter(e.author for e in events).most_common()]
