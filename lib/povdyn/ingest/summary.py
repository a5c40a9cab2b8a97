"""What one ingest run did: per-table reports and the run summary (ingest_summary.json)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path



@dataclass
class TableReport:
    """What happened to one csv file, workbook sheet or parquet file."""
    source_file: str
    sheet: str | None = None
    kind: str | None = None
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    blank_rows: int = 0
    footer_rows: int = 0
    header_row: int | None = None
    period_source: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class IngestSummary:
    """Result of ingest(). `ok` is False when a file could not be read or recognised,
    or when the row balance does not hold. str() gives the human summary."""
    raw_dir: Path
    out_dir: Path
    tables: list[TableReport]
    errors: list[str]
    ignored_files: list[str]
    panel_rows: int
    support_rows: int
    households: int
    periods: list
    frequency: str | None
    register_kind: str | None = None
    register_kind_by_province: dict = field(default_factory=dict)
    register_kind_counts: dict = field(default_factory=dict)
    totals_rows: int = 0
    adoption_rows: int = 0
    file_hashes: dict = field(default_factory=dict)
    reused_files: list = field(default_factory=list)
    seconds: float = 0.0

    def _totals(self, kind: str) -> dict:
        rows = [t for t in self.tables if t.kind == kind]
        return {k: sum(getattr(t, k) for t in rows)
                for k in ("rows_in", "loaded", "quarantined", "duplicates_dropped", "blank_rows",
                          "footer_rows")}

    @property
    def register(self) -> dict:
        return self._totals("register")

    @property
    def support(self) -> dict:
        return self._totals("support")

    @property
    def totals(self) -> dict:
        return self._totals("totals")

    @property
    def adoption(self) -> dict:
        return self._totals("adoption")

    @property
    def rows_in(self) -> int:
        return sum(t.rows_in for t in self.tables if t.kind)

    @property
    def rows_quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables if t.kind)

    @property
    def balanced(self) -> bool:
        """rows in = loaded + quarantined + exact duplicates dropped, for every table."""
        return all(t.rows_in == t.loaded + t.quarantined + t.duplicates_dropped
                   for t in self.tables)

    @property
    def ok(self) -> bool:
        return not self.errors and self.balanced

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds else float("nan")

    def as_dict(self) -> dict:
        """JSON-ready and deterministic (no timings, paths relative to raw_dir)."""
        return {
            "ok": self.ok,
            "balanced": self.balanced,
            "rule": "rows_in = loaded + quarantined + duplicates_dropped (per table); "
                    "blank rows and signature-footer rows are not data and not in rows_in",
            "register_kind": self.register_kind,
            "register_kind_by_province": self.register_kind_by_province,
            "register_kind_counts": self.register_kind_counts,
            "register": self.register,
            "support": self.support,
            "totals": self.totals,
            "adoption": self.adoption,
            "panel_rows": self.panel_rows,
            "support_rows": self.support_rows,
            "totals_rows": self.totals_rows,
            "adoption_rows": self.adoption_rows,
            "households": self.households,
            "frequency": self.frequency,
            "periods": [str(p) for p in self.periods],
            "errors": self.errors,
            "ignored_files": self.ignored_files,
            "file_sha256": self.file_hashes,
            "tables": [t.as_dict() for t in self.tables],
        }

    def __str__(self) -> str:
        r, s = self.register, self.support
        lines = [
            f"povdyn ingest: {self.raw_dir} -> {self.out_dir}",
            f"  tables loaded: {sum(t.kind == 'register' for t in self.tables)} register, "
            f"{sum(t.kind == 'support' for t in self.tables)} programme roll"
            + (f"; {sum(t.error is not None for t in self.tables)} not loaded (see ERROR below)"
               if any(t.error for t in self.tables) else ""),
            f"  register rows in {r['rows_in']:,} = loaded {r['loaded']:,} + quarantined "
            f"{r['quarantined']:,} + exact duplicates dropped {r['duplicates_dropped']:,}"
            + ("" if self.balanced else "   <-- DOES NOT BALANCE (a bug: please report)"),
            f"  programme rows in {s['rows_in']:,} = loaded {s['loaded']:,} + quarantined "
            f"{s['quarantined']:,} + exact duplicates dropped {s['duplicates_dropped']:,}",
            f"  household totals rows in {self.totals['rows_in']:,} = loaded "
            f"{self.totals['loaded']:,} + quarantined {self.totals['quarantined']:,} + exact "
            f"duplicates dropped {self.totals['duplicates_dropped']:,}",
            f"  commune adoption rows in {self.adoption['rows_in']:,} = loaded "
            f"{self.adoption['loaded']:,} + quarantined {self.adoption['quarantined']:,} + exact "
            f"duplicates dropped {self.adoption['duplicates_dropped']:,}",
            f"  panel: {self.panel_rows:,} rows, {self.households:,} households, "
            f"{len(self.periods)} {self.frequency or ''} periods"
            + (f" ({self.periods[0]}–{self.periods[-1]})" if self.periods else ""),
        ]
        if self.register_kind or self.register_kind_by_province:
            kind_words = {"lists": "lists (poor/near-poor lists: absent means not poor)",
                          "full": "full panel (every household at every review)"}
            lines.append(f"  register kind: {kind_words.get(self.register_kind, 'NOT DECIDED')}")
        if not self.totals_rows and self.register_kind == "lists":
            lines.append("  no household totals table (Tổng số hộ): reports show counts and "
                         "flows, not rates")
        blank = sum(t.blank_rows for t in self.tables if t.kind)
        if blank:
            lines.append(f"  blank rows skipped: {blank:,}")
        footer = sum(t.footer_rows for t in self.tables if t.kind)
        if footer:
            lines.append(f"  signature-footer rows skipped (not data): {footer:,}")
        sources = Counter((t.period_source or "").split(":")[0] for t in self.tables
                          if t.kind in ("register", "totals") and t.period_source != "column")
        if sources:
            lines.append("  period taken from " + ", ".join(
                f"{k or 'nowhere (rows quarantined)'}: {v} table(s)"
                for k, v in sorted(sources.items())) + " (per table in ingest_summary.json)")
        if self.rows_quarantined:
            lines.append(f"  quarantined rows with reasons: {self.out_dir / 'quarantine.csv'}")
        if self.reused_files:
            lines.append(f"  unchanged since the last run (checked rows reused): "
                         f"{len(self.reused_files)} file(s); read: "
                         f"{len(self.file_hashes) - len(self.reused_files)} new or changed")
        if self.seconds:
            lines.append(f"  {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)")
        for name in self.ignored_files:
            lines.append(f"  ignored (not a table): {name}")
        for message in self.errors:
            lines.append(f"  ERROR {message}")
        lines.append("  OK" if self.ok else "  NOT OK: fix or remove the files above and re-run")
        return "\n".join(lines)
