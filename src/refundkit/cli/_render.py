"""Tables and sentences for people: what the commands and the demo print.

rich is imported inside the functions that draw, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._model import Card, Destination, RefundStatus
from .._money import Money

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table
    from rich.text import Text

    from .._gateway import Capabilities
    from .._kit import BalanceLot, InvoiceBalance
    from .._model import Event, JournalLine, Payment, Quote, Refund
    from .._planner import Leg, LegResult
    from ._app import Run

_STATUS_STYLE = {
    RefundStatus.SUCCEEDED: "green",
    RefundStatus.PENDING: "yellow",
    RefundStatus.RESERVED: "yellow",
    RefundStatus.SUBMITTED: "yellow",
    RefundStatus.UNKNOWN: "yellow",
    RefundStatus.FAILED: "red",
    RefundStatus.MANUAL_REVIEW: "red",
    RefundStatus.REVERSED: "red",
}
_FAILED = (
    RefundStatus.FAILED,
    RefundStatus.MANUAL_REVIEW,
    RefundStatus.REVERSED,
    RefundStatus.UNKNOWN,
)


def one_line(text: str) -> str:
    return " ".join(text.split())


def status_text(status: RefundStatus | str) -> Text:
    from rich.text import Text

    st = RefundStatus(status)
    return Text(st.value, style=_STATUS_STYLE.get(st, ""))


def card_text(card: Card | Mapping[str, Any] | None, *, expiry: bool = False) -> str:
    """``visa •••• 4242`` (with ``12/2030`` when ``expiry``); never more of a card."""
    if card is None:
        return "—"
    if not isinstance(card, Card):
        card = Card(
            brand=str(card.get("brand")),
            last4=str(card.get("last4")),
            exp_month=card.get("exp_month"),
            exp_year=card.get("exp_year"),
        )
    return card.display() if expiry else f"{card.brand} •••• {card.last4}"


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _dash(value: str | None) -> str:
    return value if value else "—"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- tables -----------------------------------------------------------------------------------


class FittedTable:
    """A table laid out for the width it is printed at: "id" columns stay whole when they can.

    Column kinds: "id" (kept whole while the width allows, then folded, never truncated),
    "amount" (right-aligned, one line), "short" (one line), "text" (wraps).
    """

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[str | Text]],
        *,
        title: str | None = None,
        footer: Sequence[str] | None = None,
    ) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.title = title
        self.footer = list(footer) if footer is not None else None

    def table(self, width: int) -> Table:
        from rich.cells import cell_len
        from rich.table import Table

        widest = [
            max(
                [cell_len(str(row[i])) for row in self.rows]
                + [cell_len(line) for line in header.split()]
                + [cell_len(line) for line in str((self.footer or [""] * (i + 1))[i]).split("\n")]
            )
            for i, (header, _) in enumerate(self.columns)
        ]
        # One-line columns take their width; the others at least a few cells. Then ids are
        # kept whole, left to right, while they fit.
        floor = 5
        used = 1 + sum(
            3 + (w if kind in ("amount", "short") else min(w, floor))
            for w, (_, kind) in zip(widest, self.columns, strict=True)
        )
        keep: set[int] = set()
        for i, (_, kind) in enumerate(self.columns):
            extra = widest[i] - min(widest[i], floor)
            if kind == "id" and used + extra <= width:
                keep.add(i)
                used += extra
        table = Table(
            title=self.title,
            title_justify="left",
            title_style="bold",
            show_footer=self.footer is not None,
        )
        for i, (header, kind) in enumerate(self.columns):
            table.add_column(
                header,
                self.footer[i] if self.footer is not None else "",
                justify="right" if kind == "amount" else "left",
                no_wrap=kind in ("amount", "short") or i in keep,
                overflow="fold",
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def make_table(
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str | Text]],
    *,
    title: str | None = None,
    footer: Sequence[str] | None = None,
) -> FittedTable:
    """A table of typed columns (see ``FittedTable``), laid out when printed."""
    return FittedTable(columns, rows, title=title, footer=footer)


def key_values(rows: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column grid without borders: label, value."""
    from rich.table import Table

    table = Table.grid(padding=(0, 3), pad_edge=False)
    if title:
        table.title = title
        table.title_justify = "left"
        table.title_style = "bold"
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value if value is not None else "—")
    return table


class Listed(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


L = TypeVar("L", bound=Listed)


def print_list(
    run: Run,
    key: str,
    items: Sequence[L],
    table: Callable[[Sequence[L]], FittedTable],
    *,
    empty: str,
) -> bool:
    """The shape of every listing: ``{key: [...]}`` with --json, else ``empty`` or the table.

    True when the table was printed, so that a command can add a hint under it.
    """
    if run.as_json:
        run.emit({key: [item.to_dict() for item in items]})
        return False
    if not items:
        run.console.print(empty)
        return False
    run.console.print(table(items))
    return True


# --- payments, refunds, quotes ----------------------------------------------------------------


def _paid_to(p: Payment) -> str:
    if p.destination is Destination.CUSTOMER_BALANCE:
        return "customer balance"
    return f"invoice {p.invoice_id}" if p.invoice_id else "invoice"


def payments_table(payments: Sequence[Payment], title: str | None = "Payments") -> FittedTable:
    rows = [
        [
            p.id,
            p.customer_id,
            p.amount.format(),
            (p.refunded or Money.zero(p.amount.currency)).format(),
            _paid_to(p),
            p.gateway,
            card_text(p.card),
        ]
        for p in payments
    ]
    return make_table(
        [
            ("payment", "id"),
            ("customer", "id"),
            ("amount", "amount"),
            ("refunded", "amount"),
            ("paid to", "text"),
            ("gateway", "id"),
            ("card", "text"),
        ],
        rows,
        title=title,
    )


def refunds_table(refunds: Sequence[Refund], title: str | None = "Refunds") -> FittedTable:
    failures = any(r.failure_code and r.status in _FAILED for r in refunds)
    rows: list[list[str | Text]] = []
    for r in refunds:
        row: list[str | Text] = [r.id, r.payment_id, r.amount.format(), status_text(r.status)]
        if failures:
            row.append(r.failure_code if r.failure_code and r.status in _FAILED else "")
        rows.append([*row, r.reason or "—", r.actor or "—", when(r.created_at)])
    columns = [("refund", "id"), ("payment", "id"), ("amount", "amount"), ("status", "short")]
    if failures:
        columns.append(("failure", "text"))
    columns += [("reason", "text"), ("actor", "text"), ("created (UTC)", "text")]
    return make_table(columns, rows, title=title)


def limits_table(quote: Quote) -> FittedTable:
    return make_table(
        [("code", "id"), ("at most", "amount"), ("why", "text")],
        [[limit.code, limit.amount.format(), limit.message] for limit in quote.limits],
        title="Limits that bind",
    )


def refund_summary(refund: Refund) -> Table:
    rows: list[tuple[str, Any]] = [
        ("refund", refund.id),
        ("payment", refund.payment_id),
        ("amount", refund.amount.format()),
        ("status", status_text(refund.status)),
        ("reason", refund.reason),
        ("actor", refund.actor),
        ("idempotency key", refund.idempotency_key),
        ("gateway", refund.gateway),
        ("gateway refund", refund.gateway_refund_id),
        ("created", f"{when(refund.created_at)} UTC"),
    ]
    if refund.status in _FAILED and (refund.failure_code or refund.failure_message):
        rows.append(
            ("failure", f"{refund.failure_code or ''} {refund.failure_message or ''}".strip())
        )
    return key_values(rows)


def refund_outcome(refund: Refund) -> str:
    """What a person should know about a refund's status, in one sentence."""
    s = refund.status
    if s is RefundStatus.SUCCEEDED:
        return f"Refunded {refund.amount.format()} of {refund.payment_id}."
    if s is RefundStatus.PENDING:
        return (
            f"The gateway accepted the refund of {refund.amount.format()}; it confirms the "
            "outcome later (webhook or `refundkit recover`). The amount is held meanwhile."
        )
    if s in (RefundStatus.UNKNOWN, RefundStatus.RESERVED, RefundStatus.SUBMITTED):
        return (
            f"The gateway's answer was lost: whether {refund.amount.format()} went back is "
            "not known yet. It stays held; `refundkit recover` looks it up."
        )
    if s is RefundStatus.MANUAL_REVIEW:
        return "The outcome needs a person to look at it (manual review)."
    return f"The refund {s.value}."


def quote_summary(quote: Quote) -> Table:
    return key_values(
        [
            ("refundable", yes(quote.refundable)),
            ("default amount", quote.default_amount.format()),
            ("max amount", quote.max_amount.format()),
            ("whole amount only", yes(quote.full_only)),
        ]
    )


def quote_dict(quote: Quote) -> dict[str, Any]:
    """The quote's JSON form plus its plain-words ``explanation``."""
    return {**quote.to_dict(), "explanation": quote.explain()}


def capabilities_row(caps: Capabilities) -> list[str]:
    window = caps.idempotency_window_hours
    keys = yes(caps.idempotency_keys)
    if caps.idempotency_keys and window is not None:
        keys += f" ({window} h)"
    refund_window = f"{caps.refund_window_days} days" if caps.refund_window_days else "none"
    most = str(caps.max_refunds_per_payment) if caps.max_refunds_per_payment else "no limit"
    return [
        yes(caps.partial_refunds),
        yes(caps.async_outcome),
        keys,
        yes(caps.void_if_unsettled),
        refund_window,
        most,
    ]


# --- events and the journal -------------------------------------------------------------------


def events_table(
    events: Sequence[Event],
    title: str | None = "Events (outbox, oldest first)",
    *,
    compact: bool = False,
) -> FittedTable:
    """Events: type, refund, amount and masked card (plus ids and times unless ``compact``)."""
    rows: list[list[str | Text]] = []
    for ev in events:
        data = ev.data
        refund = data.get("refund") or {}
        payment = data.get("payment") or {}
        amount = (
            Money(refund["amount"], refund["currency"]).format()
            if "amount" in refund and "currency" in refund
            else "—"
        )
        cells: list[str | Text] = [
            ev.type,
            refund.get("id", "—"),
            payment.get("id", "—"),
            amount,
            card_text(data.get("card")),
        ]
        rows.append([str(ev.seq), *cells] if compact else [str(ev.seq), ev.id, *cells, ev.created])
    columns = [
        ("type", "id"),
        ("refund", "id"),
        ("payment", "id"),
        ("amount", "amount"),
        ("card", "text"),
    ]
    if compact:
        columns = [("#", "amount"), *columns]
    else:
        columns = [("#", "amount"), ("event", "text"), *columns, ("created", "text")]
    return make_table(columns, rows, title=title)


def journal_totals(lines: Sequence[JournalLine]) -> dict[str, tuple[Money, Money]]:
    """Debits and credits per currency."""
    totals: dict[str, tuple[Money, Money]] = {}
    for line in lines:
        cur = line.amount.currency
        debit, credit = totals.get(cur, (Money.zero(cur), Money.zero(cur)))
        if line.side == "debit":
            debit += line.amount
        else:
            credit += line.amount
        totals[cur] = (debit, credit)
    return totals


def journal_balanced(lines: Sequence[JournalLine]) -> bool:
    """Debits equal credits in every journal and currency."""
    from .._ledger import is_balanced

    return is_balanced(list(lines))


def journal_table(
    lines: Sequence[JournalLine], title: str | None = "Journal", *, compact: bool = False
) -> FittedTable:
    """Journal lines with debit and credit columns and a total row (times unless compact)."""
    totals = journal_totals(lines)
    rows: list[list[str | Text]] = []
    for line in lines:
        amount = line.amount.format()
        row: list[str | Text] = [
            line.refund_id,
            line.kind,
            line.account,
            amount if line.side == "debit" else "",
            amount if line.side == "credit" else "",
        ]
        rows.append(row if compact else [*row, when(line.posted_at)])
    columns = [
        ("refund", "id"),
        ("kind", "short"),
        ("account", "id"),
        ("debit", "amount"),
        ("credit", "amount"),
    ]
    footer = [
        "total",
        "",
        "",
        "\n".join(d.format() for d, _ in totals.values()),
        "\n".join(c.format() for _, c in totals.values()),
    ]
    if not compact:
        columns.append(("posted (UTC)", "text"))
        footer.append("")
    return make_table(columns, rows, title=title, footer=footer)


def balance_sentence(lines: Sequence[JournalLine]) -> Text:
    from rich.text import Text

    if not lines:
        return Text("No journal entries yet.")
    sums = "; ".join(
        f"debits {d.format()} = credits {c.format()}"
        if d == c
        else f"debits {d.format()} ≠ credits {c.format()}"
        for d, c in journal_totals(lines).values()
    )
    if journal_balanced(lines):
        return Text(f"Balanced: {sums}.", style="green")
    return Text(f"NOT balanced: {sums}.", style="bold red")


# --- balances and plans -----------------------------------------------------------------------


def lots_table(lots: Sequence[BalanceLot], title: str | None = None) -> FittedTable:
    """Balance lots: kind (top_up or credit), the payment that funded each, what remains."""
    return make_table(
        [
            ("lot", "id"),
            ("kind", "short"),
            ("funded by", "id"),
            ("amount", "amount"),
            ("remaining", "amount"),
        ],
        [
            [
                lot.id,
                lot.kind,
                _dash(lot.funding_payment_id),
                lot.amount.format(),
                lot.remaining.format(),
            ]
            for lot in lots
        ],
        title=title,
    )


def invoice_payments_table(invoice: InvoiceBalance) -> FittedTable:
    """An invoice's payments (split tender) with what each may still refund."""
    rows: list[list[str | Text]] = []
    for p in invoice.payments:
        zero = Money.zero(p.amount.currency)
        rows.append(
            [
                p.id,
                p.amount.format(),
                (p.refunded or zero).format(),
                (p.credited or zero).format(),
                p.refundable.format(),
                p.gateway,
                card_text(p.card),
                when(p.captured_at),
            ]
        )
    return make_table(
        [
            ("payment", "id"),
            ("amount", "amount"),
            ("refunded", "amount"),
            ("credited", "amount"),
            ("refundable", "amount"),
            ("gateway", "id"),
            ("card", "text"),
            ("captured (UTC)", "text"),
        ],
        rows,
        title="Payments (newest first)",
    )


def legs_table(legs: Sequence[Leg], title: str | None = "Legs") -> FittedTable:
    """A plan's legs: one refund each, with the payment, invoice or lot it comes from."""
    return make_table(
        [
            ("#", "amount"),
            ("payment", "id"),
            ("invoice", "id"),
            ("lot", "id"),
            ("amount", "amount"),
            ("gateway", "id"),
            ("card", "text"),
        ],
        [
            [
                str(i),
                leg.payment_id,
                _dash(leg.invoice_id),
                _dash(leg.lot_id),
                leg.amount.format(),
                leg.gateway,
                card_text(leg.card),
            ]
            for i, leg in enumerate(legs)
        ],
        title=title,
    )


def leg_status_text(status: str) -> Text:
    """A leg's status, coloured like a refund's; ``refused`` (no refund was made) is red."""
    from rich.text import Text

    if status in {s.value for s in RefundStatus}:
        return status_text(status)
    return Text(status, style="red")


def _leg_error(result: LegResult) -> str:
    if not result.error:
        return ""
    code, message = result.error.get("code"), result.error.get("message")
    return one_line(f"{code}: {message}" if message else str(code))


def leg_results_table(results: Sequence[LegResult], title: str | None = "Legs") -> FittedTable:
    """What happened to each leg: its status, the refund made (or found again), why not."""
    errors = any(r.error for r in results)
    columns = [
        ("#", "amount"),
        ("payment", "id"),
        ("invoice", "id"),
        ("lot", "id"),
        ("amount", "amount"),
        ("status", "short"),
        ("refund", "id"),
    ]
    if errors:
        columns.append(("why", "text"))
    rows: list[list[str | Text]] = []
    for r in results:
        row: list[str | Text] = [
            str(r.index),
            r.leg.payment_id,
            _dash(r.leg.invoice_id),
            _dash(r.leg.lot_id),
            r.leg.amount.format(),
            leg_status_text(r.status),
            _dash(r.refund_id),
        ]
        rows.append([*row, _leg_error(r)] if errors else row)
    return make_table(columns, rows, title=title)
