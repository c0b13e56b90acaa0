"""The results table the scenarios fill in, and the formatting they share."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.harness import App


@dataclass
class Row:
    """One line of the results table; ``met`` is None for a row without a target."""

    metric: str
    result: str
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    """What the scenarios found: table rows, notes under it, peak RSS per app process."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_rss: dict[str, float] = field(default_factory=dict)

    def add(self, metric: str, result: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(metric, result, target, met))

    def table(self) -> str:
        lines = ["| metric | result | target | met |", "|---|---|---|---|"]
        for row in self.rows:
            met = "" if row.met is None else ("yes" if row.met else "**NO**")
            lines.append(f"| {row.metric} | {row.result} | {row.target} | {met} |")
        return "\n".join(lines)

    def app_done(self, app: App, label: str) -> float:
        """Note a finished scenario's app: its peak RSS (returned) and any errors it logged,
        which make the scenario's numbers suspect."""
        rss = app.peak_rss_mb()
        self.peak_rss[label] = rss
        bad = [line for line in app.log().splitlines() if " ERROR " in line or "Traceback" in line]
        if bad:
            self.notes.append(f"{label}: {len(bad)} error lines in the app log, e.g. {bad[0]}")
        return rss


def ms(seconds: float) -> str:
    """Seconds shown in milliseconds."""
    return f"{seconds * 1000:.1f} ms"
