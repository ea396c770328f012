"""What posting can refuse. Each is an ``ApiError``, so an uncaught one renders in the one error
shape; callers that can do something else (the auction tries the next bid) catch the class."""

from __future__ import annotations

import uuid

from exchange.errors import ApiError, FieldProblem

INSUFFICIENT_BALANCE = "insufficient_balance"  # the auction's reason code for the same thing


class LedgerError(ApiError):
    pass


class InvalidEntry(LedgerError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        count = len(problems)
        super().__init__(
            422,
            "validation_failed",
            f"the entry is refused: {count} problem{'s' if count != 1 else ''}",
            fields=problems,
        )
        self.problems = problems


class EntryConflict(LedgerError):
    """The id is taken by an entry that moves other money: a bug in the caller, never a retry."""

    def __init__(self, entry_id: uuid.UUID) -> None:
        super().__init__(
            409,
            "entry_conflict",
            f"entry {entry_id} exists with other postings; an entry id names one entry only",
            details={"entry_id": str(entry_id)},
        )
        self.entry_id = entry_id


class PeriodClosed(LedgerError):
    def __init__(self, period: str) -> None:
        super().__init__(
            409,
            "period_closed",
            f"period {period} is closed; post the correction in an open period",
            details={"period": period},
        )
        self.period = period


class InsufficientFunds(LedgerError):
    """The account would go below its bound: a buyer below minus its credit limit, a supplier
    paid more than it is owed."""

    def __init__(self, account: str, amount_minor: int, available_minor: int) -> None:
        super().__init__(
            409,
            INSUFFICIENT_BALANCE,
            f"{account} cannot pay {amount_minor}: {available_minor} available",
            details={
                "account": account,
                "amount_minor": amount_minor,
                "available_minor": available_minor,
            },
        )
        self.account = account
        self.amount_minor = amount_minor
        self.available_minor = available_minor


class PeriodNotOver(LedgerError):
    """A period closes after its last day, never while entries may still land in it."""

    def __init__(self, period: str) -> None:
        super().__init__(
            409,
            "period_not_over",
            f"period {period} is not over yet; close it after it ends",
            details={"period": period},
        )
        self.period = period
