"""What a CSV import did: counts, and the first rejected and repeated rows with their lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REJECTED_LIMIT = 100


@dataclass
class Rejected:
    """One row that was not imported and why."""

    row: int
    email: str
    reason: str


@dataclass
class Repeated:
    """A row whose address an earlier row of the same file already had: the later one wins."""

    row: int
    email: str
    first_row: int


@dataclass
class ImportSummary:
    """What an import did; `rejected` keeps the first REJECTED_LIMIT rows, the count has all."""

    imported: int = 0
    updated: int = 0
    skipped_existing: int = 0
    # Rows whose `status` says the reader left (unsubscribed, bounced, complained): kept as
    # such, so an exported list imported elsewhere never mails those who left.
    left: int = 0
    rejected_count: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0
    repeated_count: int = 0
    repeated: list[Repeated] = field(default_factory=list)
    # Where each address of the file first appeared (only addresses, for this one import).
    _first_row: dict[str, int] = field(default_factory=dict, repr=False)

    def repeat_of(self, row: int, email: str) -> int | None:
        """Return the earlier row with this address (noting the repeat), or None for a first."""
        first = self._first_row.setdefault(email, row)
        if first == row:
            return None
        self.repeated_count += 1
        if len(self.repeated) < REJECTED_LIMIT:
            self.repeated.append(Repeated(row=row, email=email, first_row=first))
        return first

    def reject(self, row: int, email: str, reason: str) -> None:
        """Count a rejected row, keeping its detail while the list is short."""
        self.rejected_count += 1
        if len(self.rejected) < REJECTED_LIMIT:
            # Cut the echoed value: a garbage cell should not bloat the summary.
            self.rejected.append(Rejected(row=row, email=email[:320], reason=reason))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape the API and the CLI print."""
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped_existing": self.skipped_existing,
            "left": self.left,
            "rejected_count": self.rejected_count,
            "rejected": [
                {"row": r.row, "email": r.email, "reason": r.reason} for r in self.rejected
            ],
            "rows": self.rows,
            "repeated_count": self.repeated_count,
            "repeated": [
                {"row": r.row, "email": r.email, "first_row": r.first_row} for r in self.repeated
            ],
        }
