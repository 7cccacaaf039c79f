"""The ``refundkit`` command line: one command per facade method, plus ``demo`` and ``gateways``.

Startup must stay instant (``refundkit --help``): nothing heavy is imported at module level.
SQLAlchemy (through ``refundkit._kit``) and rich are imported inside the commands that need
them. ``import refundkit`` itself is light, so its errors, money and model types are fine here.

Output: rich tables for people; with ``--json`` exactly one JSON document on stdout. Errors are
one line on stderr (``error: <code>: <message>``), also ``{"error": {...}}`` on stdout with
``--json``. Exit codes: 0 done, 1 failure (a gateway or the system), 2 the caller's mistake
(bad argument, unknown payment, a refused refund, a gateway decline).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from ._config import CONFIG_ENV, DEFAULT_CONFIG, Config, load_config
from ._errors import GatewayError, InvalidInput, RefundkitError, RefundNotAllowed
from ._model import Card, Destination, RefundStatus, iso
from ._money import Money
from ._planner import STRATEGIES, Plan
from ._schedule import format_schedule, parse_schedule

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table
    from rich.text import Text

    from ._gateway import Capabilities
    from ._kit import BalanceLot, InvoiceBalance, RecoveryReport, RefundKit
    from ._model import Event, JournalLine, Payment, Quote, Refund
    from ._planner import Leg, LegResult, LegStatus, PlanResult

DEFAULT_DB = "sqlite:///refundkit.db"
DB_ENV = "REFUNDKIT_DB"
#: The currency of amounts for a customer (not a payment) when --currency is not given.
DEFAULT_CURRENCY = "USD"
REDEEM_ORDERS = ("oldest_first", "newest_first")

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
#: Leg statuses after which a plan counts as done (exit 0); any other status exits 1.
_LEG_DONE = ("succeeded", "pending")


# --- errors -----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


class CliFailure(click.ClickException):
    """A refusal or failure: one line on stderr, and ``{"error": ...}`` on stdout with --json."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        exit_code: int = 2,
        details: Mapping[str, Any] | None = None,
        as_json: bool = False,
        note: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code  # type: ignore[misc]  # per failure, not per class
        self.details = dict(details) if details is not None else {"code": code, "message": message}
        self.as_json = as_json
        self.note = note

    @classmethod
    def from_error(cls, exc: RefundkitError, *, as_json: bool) -> CliFailure:
        notes: list[str] = []
        if isinstance(exc, RefundNotAllowed) and exc.limits:
            notes.append("limits: " + ", ".join(limit.code for limit in exc.limits))
        if isinstance(exc, GatewayError):
            if exc.gateway_code:
                notes.append(f"gateway code: {exc.gateway_code}")
            if exc.refund is not None:
                notes.append(f"refund {exc.refund.id} is recorded as {exc.refund.status}")
        return cls(
            exc.code,
            exc.message,
            exit_code=2 if exc.user_error else 1,
            details=exc.to_dict(),
            as_json=as_json,
            note="; ".join(notes),
        )

    def line(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"error: {self.code}: {_one_line(self.message)}{note}"

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps({"error": self.details}, indent=2, ensure_ascii=False))
        click.echo(self.line(), err=True)


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


class RefundkitGroup(click.Group):
    """The root group: every error ends as one line on stderr (never a traceback)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except CliFailure as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if isinstance(ctx, click.Context):
                hint = f" Try '{ctx.command_path} --help'."
            message = exc.format_message() + hint
            failure = CliFailure(
                "usage", message, exit_code=exc.exit_code, as_json=_wants_json(argv)
            )
            failure.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # The reader went away (`refundkit events | head`): stop quietly, like `cat`.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


# --- plumbing ---------------------------------------------------------------------------------


class Settings:
    """The root group's options, read by every command."""

    def __init__(self, db: str, as_json: bool, config_path: str | None = None) -> None:
        self.db = db
        self.as_json = as_json
        self.config_path = config_path


class Run:
    """One command's resources: the kit (opened on first use), the console, JSON output."""

    def __init__(self, db: str, as_json: bool, config_path: str | None = None) -> None:
        self.db = db
        self.as_json = as_json
        self.config_path = config_path
        #: Only commands that write new data may create a missing store.
        self.create = False

    @functools.cached_property
    def config(self) -> Config:
        """The configuration file (--config, $REFUNDKIT_CONFIG, ./refundkit.toml), read once."""
        return load_config(self.config_path)

    @functools.cached_property
    def kit(self) -> RefundKit:
        gateways = self.config.section("gateways")
        return open_kit(self.db, as_json=self.as_json, create=self.create, gateways=gateways)

    @functools.cached_property
    def console(self) -> Console:
        return make_console()

    def emit(self, data: Any) -> None:
        """The one JSON document of a ``--json`` run."""
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def fail(self, code: str, message: str, *, exit_code: int = 2) -> CliFailure:
        return CliFailure(code, message, exit_code=exit_code, as_json=self.as_json)

    def close(self) -> None:
        if "kit" in self.__dict__:
            self.kit.close()


def make_console() -> Console:
    """A console for data: no markup, emoji or highlighting in what we print; wide when piped."""
    from rich.console import Console

    console = Console(markup=False, emoji=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(markup=False, emoji=False, highlight=False, width=160)
    return console


def _safe_url(url: str) -> str:
    try:
        import sqlalchemy as sa

        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the --db URL"


def open_kit(
    url: str,
    *,
    as_json: bool = False,
    create: bool = False,
    gateways: Mapping[str, Mapping[str, Any]] | None = None,
) -> RefundKit:
    """Open the store at ``url``; a store that cannot be opened is one error line, exit 2."""
    from ._kit import RefundKit

    try:
        return RefundKit.open(url, create=create, gateways=gateways or None)
    except RefundkitError:
        raise
    except Exception as exc:  # missing driver, unwritable path, unreachable server
        raise CliFailure(
            "store_unavailable",
            f"cannot open the store {_safe_url(url)}: {type(exc).__name__}: {_one_line(str(exc))}",
            as_json=as_json,
        ) from exc


def _settings() -> Settings:
    return click.get_current_context().find_object(Settings) or Settings(
        os.environ.get(DB_ENV) or DEFAULT_DB, False
    )


def kit_command(
    group: click.Group, name: str | None = None, *, store: bool = True
) -> Callable[[Callable[..., None]], click.Command]:
    """Make ``f(run, **params)`` a command with ``--json`` (and ``--db``) and error handling."""

    def decorator(f: Callable[..., None]) -> click.Command:
        @functools.wraps(f)
        def callback(**kwargs: Any) -> None:
            settings = _settings()
            db = kwargs.pop("db", None) or settings.db
            as_json = bool(kwargs.pop("json_output")) or settings.as_json
            run = Run(db, as_json, settings.config_path)
            try:
                f(run, **kwargs)
            except RefundkitError as exc:
                raise CliFailure.from_error(exc, as_json=as_json) from None
            finally:
                run.close()

        cmd = group.command(name)(callback)
        if store:
            cmd.params.append(
                click.Option(
                    ["--db"],
                    metavar="URL",
                    help=f"Store URL for this command (overrides the global --db / ${DB_ENV}).",
                )
            )
        cmd.params.append(
            click.Option(
                ["--json", "json_output"],
                is_flag=True,
                help="Print one JSON document on stdout instead of tables.",
            )
        )
        return cmd

    return decorator


def parse_amount(text: str, currency: str) -> Money:
    """A decimal string in ``currency`` (``"12.34"``), strictly: never rounded, never a float."""
    return Money.parse(text, currency.upper())


def _parse_exp(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    month, sep, year = text.partition("/")
    if not (
        sep
        and month.isascii()
        and month.isdigit()
        and year.isascii()
        and year.isdigit()
        and len(year) in (2, 4)
    ):
        raise InvalidInput(f"--card-exp must look like 12/2030, not {text!r}")
    return int(month), int(year) + (2000 if len(year) == 2 else 0)


# --- rendering (shared with the demo) ---------------------------------------------------------


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


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


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
        rows.append([*row, r.reason or "—", r.actor or "—", _when(r.created_at)])
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
    from ._ledger import is_balanced

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
        rows.append(row if compact else [*row, _when(line.posted_at)])
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
        ("created", f"{_when(refund.created_at)} UTC"),
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
            ("refundable", _yes(quote.refundable)),
            ("default amount", quote.default_amount.format()),
            ("max amount", quote.max_amount.format()),
            ("whole amount only", _yes(quote.full_only)),
        ]
    )


def quote_dict(quote: Quote) -> dict[str, Any]:
    """The quote's JSON form plus its plain-words ``explanation``."""
    return {**quote.to_dict(), "explanation": quote.explain()}


def capabilities_row(caps: Capabilities) -> list[str]:
    window = caps.idempotency_window_hours
    keys = _yes(caps.idempotency_keys)
    if caps.idempotency_keys and window is not None:
        keys += f" ({window} h)"
    refund_window = f"{caps.refund_window_days} days" if caps.refund_window_days else "none"
    most = str(caps.max_refunds_per_payment) if caps.max_refunds_per_payment else "no limit"
    return [
        _yes(caps.partial_refunds),
        _yes(caps.async_outcome),
        keys,
        _yes(caps.void_if_unsettled),
        refund_window,
        most,
    ]


def _dash(value: str | None) -> str:
    return value if value else "—"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
                _when(p.captured_at),
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
    return _one_line(f"{code}: {message}" if message else str(code))


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


def _scope_words(scope: str | None) -> str:
    if scope is None:
        return "all the customer's payments"
    if scope == "balance":
        return "the customer balance, lot by lot"
    return f"invoice {scope}"


def print_plan(console: Console, plan: Plan, out: str | None) -> None:
    """A plan preview: its legs, what they cover, the unrefundable rest and why."""
    console.print(
        f"Plan {plan.id}: {plan.total.format()} back to {plan.customer_id} from "
        f"{_scope_words(plan.scope)}, {plan.strategy}."
    )
    if plan.legs:
        console.print(legs_table(plan.legs))
        console.print(
            f"Planned: {plan.allocation.planned.format()} in {_plural(len(plan.legs), 'refund')}."
        )
    else:
        console.print("No refund can be planned.")
    if plan.unrefundable:
        console.print(f"Unrefundable: {plan.unrefundable.format()}. {plan.reason or ''}".strip())
    note = "This is a preview: nothing was refunded."
    if out is not None:
        note += f" Saved to {out}; `refundkit execute {out}` runs it."
    elif plan.legs:
        note += " Save it with --out FILE; `refundkit execute FILE` runs it."
    console.print(note)


def _incomplete_line(result: PlanResult, not_done: Sequence[LegResult]) -> str:
    shown = not_done[:3]
    parts = []
    for r in shown:
        code = f" ({r.error['code']})" if r.error and r.error.get("code") else ""
        parts.append(f"leg {r.index} {r.leg.payment_id} {r.leg.amount.format()} {r.status}{code}")
    more = f" and {len(not_done) - len(shown)} more" if len(not_done) > len(shown) else ""
    hint = (
        " `refundkit recover` settles unknown outcomes."
        if any(r.status == "unknown" for r in not_done)
        else ""
    )
    return (
        f"error: plan_incomplete: {len(not_done)} of {_plural(len(result.legs), 'leg')} of "
        f"plan {result.plan_id} did not go through: {'; '.join(parts)}{more}.{hint}"
    )


def report_result(run: Run, result: PlanResult) -> None:
    """Print a plan's result; exit 1 (one line on stderr) unless every leg succeeded or is
    pending."""
    if run.as_json:
        run.emit(result.to_dict())
    elif not result.legs:
        run.console.print(f"Plan {result.plan_id} has no legs: nothing to refund.")
    else:
        console = run.console
        console.print(leg_results_table(result.legs, title=f"Plan {result.plan_id}"))
        outcomes: tuple[tuple[LegStatus, str, str], ...] = (
            ("succeeded", "Refunded", ""),
            ("pending", "Pending", "; the gateway confirms later (webhook or `refundkit recover`)"),
        )
        for status, words, after in outcomes:
            done = result.by_status(status)
            if done:
                cur = done[0].leg.amount.currency
                amount = sum((r.leg.amount for r in done), Money.zero(cur))
                console.print(
                    f"{words}: {amount.format()} in {_plural(len(done), 'refund')}{after}."
                )
    not_done = [r for r in result.legs if r.status not in _LEG_DONE]
    if not_done:
        click.echo(_incomplete_line(result, not_done), err=True)
        raise click.exceptions.Exit(1)


# --- the commands -----------------------------------------------------------------------------


@click.group(
    "refundkit",
    cls=RefundkitGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    metavar="URL",
    envvar=DB_ENV,
    default=DEFAULT_DB,
    show_default=True,
    show_envvar=True,
    help="The refundkit store: a SQLAlchemy URL (sqlite:///path.db, postgresql+psycopg://...).",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Machine output for every command: one JSON document on stdout.",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar=CONFIG_ENV,
    show_envvar=True,
    help=f"Configuration file (TOML; default ./{DEFAULT_CONFIG} when it exists): gateways, "
    "webhook endpoints, dashboard users.",
)
@click.version_option(
    __version__, "--version", prog_name="refundkit", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context, db: str, json_output: bool, config_path: str | None) -> None:
    """refundkit: give money back correctly.

    Quote what may go back to the card of a payment and why not more, refund it exactly once
    through its gateway, and read the events and the balanced journal it wrote.

    Start with `refundkit demo`. Amounts are decimal strings in the payment's currency
    (`--amount 12.34`), never floats.

    Exit codes: 0 done; 2 your input or a refusal (unknown payment, bad amount, refund above
    the maximum, gateway decline); 1 anything else. Errors are one line on stderr; with
    --json also {"error": {"code": ..., "message": ...}} on stdout.
    """
    ctx.obj = Settings(db, json_output, config_path)


@kit_command(cli, "demo", store=False)
@click.option(
    "--dir",
    "directory",
    metavar="PATH",
    type=click.Path(file_okay=False, dir_okay=True, writable=True),
    help="Where to create the demo store (default: a new temporary directory).",
)
def demo_command(run: Run, directory: str | None) -> None:
    """Walk through refunds on the offline sandbox gateway, in a fresh store.

    Creates a new local SQLite store (never the --db one), records three payments of one
    customer (an invoice payment, a customer-balance top-up, one more), then shows quotes in
    plain words, a full refund, a partial refund, a refused refund, a pending refund settled by
    a signed sandbox webhook, the events and the journal, and what to try next with
    `--db <the demo store>`. Refuses a --dir that already holds a demo store with payments.
    """
    import tempfile
    from pathlib import Path

    from . import _demo

    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="refundkit-demo-"))
    else:
        path = Path(directory).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
    db_path = path / "refundkit.db"
    url = f"sqlite:///{db_path}"
    sandbox_file = path / "refundkit.sandbox.db"
    if sandbox_file.exists() and sandbox_file.stat().st_size > 0:
        raise run.fail(
            "demo_store_not_empty",
            f"{path} already holds a sandbox from an earlier demo; "
            "pick an empty --dir (or leave --dir out for a new temporary one)",
        )
    if db_path.exists():
        kit = open_kit(url, as_json=run.as_json)
        try:
            used = bool(kit.payments())
        finally:
            kit.close()
        if used:
            raise run.fail(
                "demo_store_not_empty",
                f"{db_path} already holds payments; pick an empty --dir "
                "(or leave --dir out for a new temporary one)",
            )
    console = make_console() if not run.as_json else _quiet_console()
    kit = open_kit(url, as_json=run.as_json, create=True)
    try:
        summary = _demo.run_demo(kit, console, db_url=url, directory=str(path))
    finally:
        kit.close()
    if run.as_json:
        run.emit(summary)


def _quiet_console() -> Console:
    from rich.console import Console

    return Console(quiet=True)


@kit_command(cli, "gateways", store=False)
def gateways_command(run: Run) -> None:
    """List the installed gateways and what each can do for refunds.

    Columns: partial refunds, async outcome (webhooks or lookups confirm later), idempotency
    keys (and how long the gateway remembers them), void of an unsettled payment, the
    gateway's refund window, and the plugin distribution that provides it.
    """
    from ._plugins import PluginManager

    pm = PluginManager()
    dists: dict[str, tuple[str, str]] = {}
    for plugin, facade in pm.pluggy.list_plugin_distinfo():
        top = getattr(plugin, "__name__", type(plugin).__module__).split(".")[0]
        dists[top] = (facade.project_name, facade.version)
    rows: list[tuple[str, Capabilities, tuple[str, str] | None]] = []
    for name in pm.gateways:
        gw_cls = pm.gateways.get(name)
        top = gw_cls.__module__.split(".")[0]
        dist = dists.get(top)
        if dist is None and top == "refundkit":
            dist = ("refundkit (built-in)", __version__)
        rows.append((name, gw_cls.capabilities, dist))
    if run.as_json:
        run.emit(
            {
                "gateways": [
                    {
                        "name": name,
                        "capabilities": caps.to_dict(),
                        "distribution": {"name": dist[0], "version": dist[1]} if dist else None,
                    }
                    for name, caps, dist in rows
                ]
            }
        )
        return
    columns = [
        ("gateway", "id"),
        ("partial refunds", "text"),
        ("async outcome", "text"),
        ("idempotency keys", "text"),
        ("void if unsettled", "text"),
        ("refund window", "text"),
        ("refunds per payment", "text"),
        ("distribution", "text"),
    ]
    table = make_table(
        columns,
        [
            [name, *capabilities_row(caps), f"{dist[0]} {dist[1]}" if dist else "—"]
            for name, caps, dist in rows
        ],
        title="Installed gateways",
    )
    run.console.print(table)


@cli.group("payments")
def payments_group() -> None:
    """Record, list and show payments (captured charges refunds go back to)."""


@kit_command(payments_group, "add")
@click.argument("payment_id", metavar="ID")
@click.option("--customer", required=True, metavar="C", help="Customer id.")
@click.option(
    "--amount",
    required=True,
    metavar="DECIMAL",
    help="Captured amount as a decimal string, e.g. 50.00.",
)
@click.option(
    "--currency", required=True, metavar="CODE", help="ISO 4217 code, e.g. USD (any case)."
)
@click.option(
    "--gateway", required=True, metavar="NAME", help="The gateway that took it, e.g. sandbox."
)
@click.option(
    "--gateway-payment-id", required=True, metavar="X", help="The charge's id at the gateway."
)
@click.option(
    "--destination",
    type=click.Choice([d.value for d in Destination], case_sensitive=False),
    default=Destination.INVOICE.value,
    show_default=True,
    help="Where the money went: an invoice or the customer's balance (a top-up).",
)
@click.option("--invoice-id", metavar="INV", help="The invoice it paid.")
@click.option("--card-brand", metavar="BRAND", help="Card brand, e.g. visa.")
@click.option("--card-last4", metavar="DIGITS", help="Last 4 digits of the card.")
@click.option("--card-exp", metavar="MM/YYYY", help="Card expiry, e.g. 12/2030.")
def payments_add(
    run: Run,
    payment_id: str,
    customer: str,
    amount: str,
    currency: str,
    gateway: str,
    gateway_payment_id: str,
    destination: str,
    invoice_id: str | None,
    card_brand: str | None,
    card_last4: str | None,
    card_exp: str | None,
) -> None:
    """Record a captured payment under ID (recording the same one again is harmless).

    Only brand, last 4 digits and expiry of a card are ever accepted. On the sandbox gateway
    a payment without card details gets a test Visa ending in 4242.
    """
    money = parse_amount(amount, currency)
    card: Card | None = None
    if card_brand or card_last4 or card_exp:
        if not (card_brand and card_last4):
            raise run.fail("invalid_input", "--card-brand and --card-last4 go together")
        month, year = _parse_exp(card_exp)
        card = Card(brand=card_brand, last4=card_last4, exp_month=month, exp_year=year)
    run.create = True
    payment = run.kit.record_payment(
        id=payment_id,
        customer_id=customer,
        amount=money,
        gateway=gateway,
        gateway_payment_id=gateway_payment_id,
        destination=destination.lower(),
        card=card,
        invoice_id=invoice_id,
    )
    if run.as_json:
        run.emit(payment.to_dict())
        return
    run.console.print(
        f"Recorded payment {payment.id}: {payment.amount.format()} from "
        f"{payment.customer_id} to {payment.destination.value}."
    )
    run.console.print(payments_table([payment], title=None))


@kit_command(payments_group, "list")
@click.option("--customer", metavar="C", help="Only this customer's payments.")
def payments_list(run: Run, customer: str | None) -> None:
    """List recorded payments, oldest first."""
    payments = run.kit.payments(customer)
    if run.as_json:
        run.emit({"payments": [p.to_dict() for p in payments]})
        return
    if not payments:
        run.console.print("No payments recorded" + (f" for {customer}." if customer else "."))
        return
    run.console.print(payments_table(payments))


@kit_command(payments_group, "show")
@click.argument("payment_id", metavar="ID")
def payments_show(run: Run, payment_id: str) -> None:
    """Show one payment, what may still be refunded (in plain words) and its refunds."""
    payment = run.kit.payment(payment_id)
    quote = run.kit.quote(payment_id)
    refunds = run.kit.refunds(payment_id)
    if run.as_json:
        run.emit(
            {
                "payment": payment.to_dict(),
                "quote": quote_dict(quote),
                "refunds": [r.to_dict() for r in refunds],
            }
        )
        return
    held = payment.held or Money.zero(payment.amount.currency)
    refunded = payment.refunded or Money.zero(payment.amount.currency)
    run.console.print(
        key_values(
            [
                ("payment", payment.id),
                ("customer", payment.customer_id),
                ("amount", payment.amount.format()),
                ("destination", payment.destination.value),
                ("invoice", payment.invoice_id),
                ("gateway", f"{payment.gateway} {payment.gateway_payment_id}"),
                ("card", card_text(payment.card, expiry=True)),
                ("captured", f"{payment.captured_at:%Y-%m-%d %H:%M:%S} UTC"),
                ("refunded", refunded.format()),
                ("held by refunds", held.format()),
                ("disputed", _yes(payment.disputed)),
                ("settled", _yes(payment.settled)),
            ],
            title=f"Payment {payment.id}",
        )
    )
    run.console.print(f"Quote: {quote.explain()}")
    if refunds:
        run.console.print(refunds_table(refunds))
    else:
        run.console.print("No refunds yet.")


@kit_command(cli, "quote")
@click.argument("payment_id")
def quote_command(run: Run, payment_id: str) -> None:
    """What a refund of PAYMENT_ID may be now, and the limits that bind (why not more).

    Each limit has a stable code, the most it allows and a sentence for people. The default
    amount is what `refundkit refund` sends without --amount.
    """
    quote = run.kit.quote(payment_id)
    if run.as_json:
        run.emit(quote_dict(quote))
        return
    run.console.print(quote.explain())
    run.console.print(quote_summary(quote))
    if quote.limits:
        run.console.print(limits_table(quote))
    else:
        run.console.print("No limit binds: the whole remaining amount may go back.")


@kit_command(cli, "refund")
@click.argument("payment_id")
@click.option(
    "--amount",
    metavar="DECIMAL",
    help="How much, in the payment's currency (default: the quote's default amount).",
)
@click.option("--reason", metavar="R", help="Why, e.g. requested_by_customer.")
@click.option(
    "--idempotency-key",
    metavar="K",
    help="Retrying with the same key returns the same refund instead of a new one.",
)
@click.option("--actor", metavar="A", help="Who asks, for the audit trail, e.g. support:alice.")
def refund_command(
    run: Run,
    payment_id: str,
    amount: str | None,
    reason: str | None,
    idempotency_key: str | None,
    actor: str | None,
) -> None:
    """Refund PAYMENT_ID exactly once through the gateway that took it.

    Without --amount the quote's default amount goes back. A refusal (more than the maximum,
    a binding limit) or a gateway decline prints one error line and exits 2; nothing is
    refunded then. A pending or unknown outcome is settled later by `refundkit recover`.
    """
    payment = run.kit.payment(payment_id)
    money = parse_amount(amount, payment.amount.currency) if amount is not None else None
    refund = run.kit.refund(
        payment_id, money, reason=reason, idempotency_key=idempotency_key, actor=actor
    )
    if run.as_json:
        run.emit(refund.to_dict())
        return
    run.console.print(refund_outcome(refund))
    run.console.print(refund_summary(refund))


@kit_command(cli, "refunds")
@click.option("--payment", "payment_id", metavar="ID", help="Only refunds of this payment.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RefundStatus], case_sensitive=False),
    help="Only refunds in this status.",
)
def refunds_command(run: Run, payment_id: str | None, status: str | None) -> None:
    """List refunds, oldest first."""
    if payment_id is not None:
        run.kit.payment(payment_id)  # an unknown payment is an error, not an empty list
    refunds = run.kit.refunds(payment_id, status=status.lower() if status else None)
    if run.as_json:
        run.emit({"refunds": [r.to_dict() for r in refunds]})
        return
    if not refunds:
        run.console.print("No refunds.")
        return
    run.console.print(refunds_table(refunds))


@kit_command(cli, "recover")
@click.option("--payment", "payment_id", metavar="ID", help="Only refunds of this payment.")
@click.option(
    "--force",
    is_flag=True,
    help="Look up every in-flight refund now, not only those due on the schedule.",
)
@click.option(
    "--schedule",
    metavar="WAITS",
    help="Waits before each attempt, e.g. 15s,1m,3m,1h,1d*5 (the default); after the last "
    "one a refund goes to manual review.",
)
def recover_command(run: Run, payment_id: str | None, force: bool, schedule: str | None) -> None:
    """Settle refunds whose outcome is not known yet, by looking them up at their gateway.

    Prints what was resolved, what is still unknown, what was sent to manual review (after
    the last attempt of the schedule) and when each refund still in flight is due next.
    Never re-sends a refund blindly. Run it from cron or several workers at once: each due
    refund is claimed by one worker, so it gets one lookup per attempt.
    """
    steps = parse_schedule(schedule) if schedule is not None else None
    if steps is not None:
        run.kit.retry_schedule = steps
    if payment_id is not None:
        run.kit.payment(payment_id)
    report = run.kit.recover(payment_id, force=force)
    due = [(r, at) for r, at in run.kit.recovery_due() if payment_id in (None, r.payment_id)]
    waiting = [r for r, _ in due]
    if run.as_json:
        run.emit(
            {
                **report.to_dict(),
                "in_flight": [r.to_dict() for r in waiting],
                "schedule": format_schedule(run.kit.retry_schedule),
                "next_due": [{"refund_id": r.id, "at": iso(at)} for r, at in due],
            }
        )
        return
    _print_recovery(run.console, report, waiting, force=force)
    if due:
        refund, at = due[0]
        run.console.print(
            f"Next due: {refund.id} at {_when(at)} UTC "
            f"(schedule {format_schedule(run.kit.retry_schedule)})."
        )


@kit_command(cli, "resolve")
@click.argument("refund_id")
@click.option("--succeeded", "outcome", flag_value="succeeded", help="The money went back.")
@click.option("--failed", "outcome", flag_value="failed", help="No money moved.")
@click.option("--note", required=True, metavar="TEXT", help="Why: what you saw, and where.")
@click.option("--by", "actor", required=True, metavar="NAME", help="Who decides (kept).")
@click.option(
    "--gateway-refund-id", metavar="ID", help="The gateway's id of the refund, if you found it."
)
@click.option(
    "--force", is_flag=True, help="Decide without asking the gateway (it is wrong or down)."
)
def resolve_command(
    run: Run,
    refund_id: str,
    outcome: str | None,
    note: str,
    actor: str,
    gateway_refund_id: str | None,
    force: bool,
) -> None:
    """Decide a refund in manual review: --succeeded or --failed, with --note and --by.

    The gateway is asked first where it can be; if it says otherwise nothing changes and the
    command exits 2 (--force decides anyway). Succeeded books the refund (journal,
    charge.refunded); failed releases its hold (refund.failed). The decision is kept.
    """
    if outcome is None:
        raise run.fail("usage", "say what happened: --succeeded or --failed")
    refund = run.kit.resolve(
        refund_id,
        outcome,
        actor=actor,
        note=note,
        gateway_refund_id=gateway_refund_id,
        force=force,
    )
    if run.as_json:
        run.emit({**refund.to_dict(), "resolution": run.kit.resolution(refund.id)})
        return
    run.console.print(refund_outcome(refund))
    run.console.print(refund_summary(refund))


def _print_recovery(
    console: Console, report: RecoveryReport, waiting: Sequence[Refund], *, force: bool
) -> None:
    sections = (
        ("Resolved", report.resolved),
        ("Still unknown", report.still_unknown),
        ("Sent to manual review", report.manual_review),
    )
    for title, refunds in sections:
        if refunds:
            console.print(refunds_table(refunds, title=f"{title} ({len(refunds)})"))
        else:
            console.print(f"{title}: none.")
    reported = {r.id for _, refunds in sections for r in refunds}
    rest = [r for r in waiting if r.id not in reported]
    if rest:
        hint = "" if force else "; --force looks them up now"
        console.print(f"{len(rest)} refund(s) still in flight, not due yet{hint}.")


@kit_command(cli, "reconcile")
@click.option("--payment", "payment_id", metavar="ID", help="Only this payment.")
@click.option("--gateway", metavar="NAME", help="Only payments taken through this gateway.")
@click.option(
    "--since",
    metavar="DATE",
    help="Only payments captured at or after this ISO date or time (UTC unless it says).",
)
def reconcile_command(
    run: Run, payment_id: str | None, gateway: str | None, since: str | None
) -> None:
    """Compare refunds at the gateways with the local record and report the drift.

    Refunds made in a gateway's dashboard are imported (counted against the cap, journaled,
    announced as refund.external); amount or currency mismatches go to manual review; local
    refunds the gateway does not know are flagged. Running it again imports nothing twice.
    """
    report = run.kit.reconcile(payment_id, gateway=gateway, since=_parse_since(since))
    if run.as_json:
        run.emit(report.to_dict())
        return
    if report.clean:
        run.console.print(
            f"No drift: {report.payments_checked} payment(s) agree with their gateway."
        )
        return
    rows: list[list[str | Text]] = [
        [
            f.action,
            f.code,
            f.payment_id,
            f.refund_id or "—",
            f.gateway_refund_id or "—",
            f.amount.format() if f.amount else "—",
            f.message,
        ]
        for f in report.findings
    ]
    columns = [
        ("action", "short"),
        ("code", "id"),
        ("payment", "id"),
        ("refund", "id"),
        ("gateway refund", "id"),
        ("amount", "amount"),
        ("what", "text"),
    ]
    title = f"Drift in {report.payments_checked} payment(s) checked"
    run.console.print(make_table(columns, rows, title=title))


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since must be an ISO date or time such as 2026-11-01, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@kit_command(cli, "events")
@click.option(
    "--after", metavar="EVT_ID", help="Only events after this event id (or sequence number)."
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N events.")
@click.option("--refund", "refund_id", metavar="ID", help="Only events of this refund.")
@click.option(
    "--failed",
    is_flag=True,
    help="List dead-lettered webhook deliveries instead (retry with `deliver --retry`).",
)
def events_command(
    run: Run, after: str | None, limit: int | None, refund_id: str | None, failed: bool
) -> None:
    """List the event outbox, oldest first (charge.refunded, refund.pending, ...).

    Each event carries the refund, its payment, the customer and the masked card. Consumers
    dedupe by the event id. With --failed: the webhook deliveries that gave up.
    """
    if failed:
        show_failed_deliveries(run)
        return
    cursor: str | int | None = after
    if after is not None and after.isascii() and after.isdigit():
        cursor = int(after)
    events = run.kit.events(cursor, limit=limit, refund_id=refund_id)
    if run.as_json:
        run.emit({"events": [e.to_dict() for e in events]})
        return
    if not events:
        run.console.print("No events.")
        return
    run.console.print(events_table(events))


@kit_command(cli, "journal")
@click.option("--refund", "refund_id", metavar="ID", help="Only the entries of this refund.")
@click.option(
    "--since", metavar="WHEN", help="Only lines posted from WHEN (2026-11-01 or an ISO time)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    default="table",
    show_default=True,
    help="Export as CSV or JSON Lines (one line per journal line, stable line ids).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Trial balance: debits equal credits per currency, every refund journaled; exit 1 if not.",
)
def journal_command(
    run: Run, refund_id: str | None, since: str | None, fmt: str, check: bool
) -> None:
    """Show the accounting journal: debits and credits per refund, with totals.

    An invoice refund debits `refunds`; a customer-balance refund debits
    `customer_balance:<customer>`; both credit `gateway_clearing:<gateway>`.
    """
    if check:
        show_trial_balance(run)
        return
    if refund_id is not None:
        run.kit.get_refund(refund_id)
    if since is not None or fmt != "table":
        export_journal(run, refund_id, since, fmt)
        return
    lines = run.kit.journal(refund_id)
    if run.as_json:
        totals = journal_totals(lines)
        run.emit(
            {
                "lines": [line.to_dict() for line in lines],
                "totals": {
                    cur: {"debit": d.amount, "credit": c.amount} for cur, (d, c) in totals.items()
                },
                "balanced": journal_balanced(lines),
            }
        )
        return
    if lines:
        run.console.print(journal_table(lines))
    run.console.print(balance_sentence(lines))


def export_journal(run: Run, refund_id: str | None, since: str | None, fmt: str) -> None:
    from ._accounting import parse_since, write_export

    start = parse_since(since) if since is not None else None
    lines = run.kit.journal(refund_id, since=start)
    if fmt == "table":
        if run.as_json:
            run.emit({"lines": [line.to_dict() for line in lines]})
        elif lines:
            run.console.print(journal_table(lines))
        else:
            run.console.print("No journal lines.")
        return
    write_export(lines, sys.stdout, fmt)


def show_trial_balance(run: Run) -> None:
    report = run.kit.trial_balance()
    if run.as_json:
        run.emit(report.to_dict())
    else:
        for cur, (debit, credit) in sorted(report.totals.items()):
            verdict = "balanced" if debit == credit else "NOT balanced"
            run.console.print(
                f"{cur}: debits {debit.format()}, credits {credit.format()}: {verdict}"
            )
        for journal_id in report.unbalanced_journals:
            run.console.print(f"journal {journal_id} does not balance")
        for m in report.missing:
            run.console.print(f"refund {m.refund_id} is {m.status} but has no {m.kind} journal")
        for journal_id, status in report.unexpected:
            run.console.print(f"journal {journal_id} belongs to a refund that is {status}")
        if report.ok:
            run.console.print("The journal balances and every refund has its journal.")
    if not report.ok:
        if run.as_json:  # the report is the one JSON document; the exit code says it failed
            raise click.exceptions.Exit(1)
        raise run.fail("journal_check_failed", "the journal check found problems", exit_code=1)


def show_failed_deliveries(run: Run) -> None:
    failed = run.kit.webhook_deliveries("failed")
    if run.as_json:
        run.emit({"failed": [d.to_dict() for d in failed]})
        return
    if not failed:
        run.console.print("No failed webhook deliveries.")
        return
    rows: list[list[str | Text]] = [
        [
            d.event_id,
            d.refund_id or "—",
            d.endpoint,
            str(d.attempts),
            d.last_error or "—",
            _when(d.last_attempt_at) if d.last_attempt_at else "—",
        ]
        for d in failed
    ]
    columns = [
        ("event", "id"),
        ("refund", "id"),
        ("endpoint", "text"),
        ("attempts", "amount"),
        ("last error", "text"),
        ("last attempt (UTC)", "text"),
    ]
    run.console.print(make_table(columns, rows, title="Dead-lettered webhook deliveries"))
    run.console.print("Retry one with: refundkit deliver --retry EVENT_ID")
    if any(d.last_status_code == 410 for d in failed):
        run.console.print(
            "A 410 Gone disabled its endpoint: `refundkit endpoints enable URL` sends it again, "
            "then the endpoint's parked deliveries, in order."
        )


@kit_command(cli, "deliver")
@click.option("--forever", is_flag=True, help="Keep delivering until Ctrl-C.")
@click.option(
    "--retry", "retry_id", metavar="EVENT_ID", help="Send a dead-lettered event again first."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --forever: the pause between passes.",
)
def deliver_command(run: Run, forever: bool, retry_id: str | None, interval: float) -> None:
    """Send outbox events to the webhook endpoints of the configuration file, signed.

    At least once, in order per refund; failed attempts are retried with backoff for three
    days, then dead-lettered (`refundkit events --failed`).
    """
    from ._delivery import DeliveryReport, endpoints_from_config, run_forever

    endpoints = endpoints_from_config(run.config.section("webhooks"))
    if not endpoints:
        raise run.fail(
            "no_webhook_endpoints",
            "no webhook endpoints: add [[webhooks.endpoints]] (url, secret) to the "
            "configuration file",
        )
    if retry_id is not None:
        requeued = run.kit.retry_event(retry_id)
        if not requeued:
            raise run.fail("nothing_to_retry", f"event {retry_id} has no failed delivery")

    def say(report: DeliveryReport) -> None:
        if run.as_json:
            click.echo(json.dumps(report.to_dict()))
        else:
            run.console.print(
                f"Delivered {len(report.delivered)}, retrying {len(report.retrying)}, "
                f"dead-lettered {len(report.dead_lettered)}."
            )
            say_disabled(run, {e.url for e in endpoints})

    if forever:
        made = run_forever(
            lambda: run.kit.deliver_events(endpoints), interval=interval, on_report=say
        )
        if not run.as_json:
            run.console.print(f"Stopped after {made} attempt(s).")
        return
    report = run.kit.deliver_events(endpoints)
    if run.as_json:
        run.emit(report.to_dict())
    else:
        say(report)


def say_disabled(run: Run, urls: set[str]) -> None:
    """One line per configured endpoint that a 410 Gone disabled."""
    for state in run.kit.webhook_endpoints():
        if state.url in urls and state.disabled_at is not None:
            run.console.print(
                f"Disabled: {state.url} ({state.disabled_reason}, {_when(state.disabled_at)} UTC); "
                f"{state.pending} parked. Re-enable: refundkit endpoints enable {state.url}"
            )


@cli.group("endpoints")
def endpoints_group() -> None:
    """List the webhook endpoints deliverers have seen; re-enable one a 410 Gone disabled."""


@kit_command(endpoints_group, "list")
def endpoints_list(run: Run) -> None:
    """List webhook endpoints: enabled or disabled, where each started, pending and failed.

    An endpoint appears once a `refundkit deliver` pass has seen it in the configuration file.
    """
    states = run.kit.webhook_endpoints()
    if run.as_json:
        run.emit({"endpoints": [e.to_dict() for e in states]})
        return
    if not states:
        run.console.print("No webhook endpoints seen yet (`refundkit deliver` registers them).")
        return
    rows: list[list[str | Text]] = [
        [
            e.url,
            "disabled" if e.disabled_at else "enabled",
            _when(e.first_seen_at),
            "the start" if e.start_seq == 0 else f"event #{e.start_seq}",
            str(e.pending) + (" parked" if e.disabled_at else ""),
            str(e.failed),
            f"{e.disabled_reason}, {_when(e.disabled_at)}" if e.disabled_at else "—",
        ]
        for e in states
    ]
    columns = [
        ("endpoint", "text"),
        ("status", "short"),
        ("first seen (UTC)", "text"),
        ("gets events after", "text"),
        ("pending", "short"),
        ("failed", "amount"),
        ("disabled (UTC)", "text"),
    ]
    run.console.print(make_table(columns, rows, title="Webhook endpoints"))
    if any(e.disabled_at for e in states):
        run.console.print("Re-enable one with: refundkit endpoints enable URL")


@kit_command(endpoints_group, "enable")
@click.argument("url")
def endpoints_enable(run: Run, url: str) -> None:
    """Re-enable an endpoint a 410 Gone disabled: its parked deliveries, and the one that got
    the 410, go out again in order (same webhook-id) on the next `refundkit deliver`."""
    was_disabled = any(e.url == url and e.disabled for e in run.kit.webhook_endpoints())
    resumed = run.kit.enable_webhook_endpoint(url)
    if run.as_json:
        run.emit({"url": url, "status": "enabled", "was_disabled": was_disabled,
                  "resumed": resumed})  # fmt: skip
    elif was_disabled:
        run.console.print(
            f"Enabled {url}: {resumed} deliveries back in the queue, sent in order by the next "
            "`refundkit deliver`."
        )
    else:
        run.console.print(f"{url} was not disabled; nothing to do.")


@kit_command(cli, "balance")
@click.argument("customer_id")
def balance_command(run: Run, customer_id: str) -> None:
    """Show a customer's balance per currency, lot by lot: kind and the payment that funded it.

    A lot is a top_up (a payment into the balance) or a credit (moved out of a payment's
    refundable balance by `refundkit credit`); `refundkit refund-balance` sends lots back to
    the cards of the payments that funded them.
    """
    balance = run.kit.balance(customer_id)
    if run.as_json:
        run.emit(balance.to_dict())
        return
    if not balance.lots:
        run.console.print(f"{customer_id} has no balance.")
        return
    run.console.print(lots_table(balance.lots, title=f"Balance of {customer_id}"))
    run.console.print("Total: " + ", ".join(m.format() for m in balance.totals.values()))


@kit_command(cli, "redeem")
@click.argument("customer_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="How much, e.g. 5.00.")
@click.option("--currency", required=True, metavar="CODE", help="ISO 4217 code (any case).")
@click.option(
    "--reference", required=True, metavar="REF", help="What it paid for, e.g. the invoice id."
)
@click.option(
    "--order",
    type=click.Choice(REDEEM_ORDERS, case_sensitive=False),
    default="oldest_first",
    show_default=True,
    help="Which lots are spent first.",
)
def redeem_command(
    run: Run, customer_id: str, amount: str, currency: str, reference: str, order: str
) -> None:
    """Spend part of a customer's balance on REF, lot by lot (oldest lots first by default).

    What a top-up paid for is then no longer refundable to the card: its quote says so.
    """
    money = parse_amount(amount, currency)
    order = order.lower()
    left = run.kit.redeem_balance(customer_id, money, reference=reference, order=order)
    if run.as_json:
        run.emit(
            {
                "customer_id": customer_id,
                "redeemed": money.to_dict(),
                "reference": reference,
                "order": order,
                "remaining": left.to_dict(),
            }
        )
        return
    run.console.print(
        f"Spent {money.format()} of {customer_id}'s balance on {reference} ({order}); "
        f"{left.format()} left."
    )


def _source_of_credit(kit: RefundKit, source_id: str) -> Payment | None:
    """The payment ``source_id`` names, or the newest payment of the invoice it names."""
    from ._errors import NotFound

    try:
        return kit.payment(source_id)
    except NotFound:
        pass
    try:
        return kit.invoice(source_id).payments[0]
    except NotFound:
        return None


@kit_command(cli, "credit")
@click.argument("source_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="How much to credit, e.g. 30.00.")
@click.option(
    "--currency",
    metavar="CODE",
    help="ISO 4217 code (any case); default: the currency of the payment or invoice.",
)
@click.option("--reference", metavar="REF", help="Why, for the record, e.g. a ticket id.")
def credit_command(
    run: Run, source_id: str, amount: str, currency: str | None, reference: str | None
) -> None:
    """Issue customer credit out of a payment's (or an invoice's) refundable balance.

    SOURCE_ID is a payment id or an invoice id; an invoice's payments give newest first. The
    credit becomes balance lots that remember the payment that funded them: it is no longer
    refundable to the card directly, but `refundkit refund-balance` can still send what is
    left of it back to that card. More than the refundable balance is refused.
    """
    source = _source_of_credit(run.kit, source_id)
    if currency is None:
        currency = source.amount.currency if source is not None else DEFAULT_CURRENCY
    money = parse_amount(amount, currency)
    lots = run.kit.issue_credit(source_id, money, reference=reference)
    customer_id = source.customer_id if source is not None else None
    if run.as_json:
        run.emit(
            {
                "source_id": source_id,
                "customer_id": customer_id,
                "credited": money.to_dict(),
                "reference": reference,
                "lots": [lot.to_dict() for lot in lots],
            }
        )
        return
    run.console.print(
        f"Credited {money.format()} of {source_id} to {customer_id}'s balance as "
        f"{_plural(len(lots), 'lot')}; it is no longer refundable to the card directly."
    )
    run.console.print(lots_table(lots))


@kit_command(cli, "invoice")
@click.argument("invoice_id")
def invoice_command(run: Run, invoice_id: str) -> None:
    """Show an invoice: its total, what is refundable, refunded and credited, and its payments.

    An invoice paid by several payments (split tender) lists each with its own refundable
    balance; the invoice's refundable balance is their sum.
    """
    inv = run.kit.invoice(invoice_id)
    if run.as_json:
        run.emit(inv.to_dict())
        return
    in_flight = inv.total - inv.refundable - inv.refunded - inv.credited
    rows: list[tuple[str, Any]] = [
        ("invoice", inv.invoice_id),
        ("customer", ", ".join(sorted({p.customer_id for p in inv.payments}))),
        ("total", inv.total.format()),
        ("refundable", inv.refundable.format()),
        ("refunded", inv.refunded.format()),
        ("credited", inv.credited.format()),
    ]
    if in_flight:
        rows.append(("held by refunds in flight", in_flight.format()))
    rows.append(("payments", str(len(inv.payments))))
    run.console.print(key_values(rows, title=f"Invoice {inv.invoice_id}"))
    run.console.print(invoice_payments_table(inv))


_STRATEGY_OPTION = click.option(
    "--strategy",
    type=click.Choice(STRATEGIES, case_sensitive=False),
    default="newest_first",
    show_default=True,
    help="How the total is spread: newest or oldest payments first, the fewest refunds, "
    "or one single payment.",
)
_CURRENCY_OPTION = click.option(
    "--currency",
    metavar="CODE",
    help=f"ISO 4217 code of --amount (any case); default {DEFAULT_CURRENCY}, or the "
    "invoice's with --scope INVOICE_ID.",
)


def _plan_currency(run: Run, customer_id: str, scope: str | None, currency: str | None) -> str:
    """The currency of a plan's total: --currency, else the invoice's, else the default."""
    if scope is None or scope == "balance":
        return (currency or DEFAULT_CURRENCY).upper()
    inv = run.kit.invoice(scope)
    if not any(p.customer_id == customer_id for p in inv.payments):
        raise run.fail("invalid_input", f"invoice {scope} has no payment of {customer_id}")
    if currency is not None and currency.upper() != inv.total.currency:
        raise run.fail(
            "currency_mismatch",
            f"invoice {scope} is in {inv.total.currency}, not {currency.upper()}",
        )
    return inv.total.currency


@kit_command(cli, "plan")
@click.argument("customer_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="The total to refund, e.g. 90.00.")
@_CURRENCY_OPTION
@_STRATEGY_OPTION
@click.option(
    "--scope",
    metavar="balance|INVOICE_ID",
    help="Refund from: all the customer's payments (default), the customer balance "
    "(balance) or one invoice's payments.",
)
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Also write the plan as JSON to FILE, for `refundkit execute FILE`.",
)
def plan_command(
    run: Run,
    customer_id: str,
    amount: str,
    currency: str | None,
    strategy: str,
    scope: str | None,
    out: str | None,
) -> None:
    """Preview how a total would go back to a customer's cards; refunds nothing.

    Prints the legs (one refund each: payment, invoice, balance lot, amount, gateway, card)
    and what cannot go back through the platform, with the reason in plain words. Nothing is
    written to the store. --out FILE saves the plan so `refundkit execute FILE` can run it
    exactly as previewed (it is refused if the payments changed meanwhile).
    """
    money = parse_amount(amount, _plan_currency(run, customer_id, scope, currency))
    plan = run.kit.plan_refund(customer_id, money, strategy=strategy.lower(), scope=scope)
    if out is not None:
        from pathlib import Path

        text = json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise run.fail(
                "invalid_input", f"cannot write the plan to {out}: {exc.strerror or exc}"
            ) from None
    if run.as_json:
        run.emit(plan.to_dict())
        return
    print_plan(run.console, plan, out)


def read_plan(run: Run, plan_file: str) -> Plan:
    """The plan in ``plan_file`` (``-``: stdin); anything wrong with it is invalid_input."""
    from pathlib import Path

    where = "stdin" if plan_file == "-" else plan_file
    try:
        stdin = plan_file == "-"
        text = sys.stdin.read() if stdin else Path(plan_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise run.fail("invalid_input", f"cannot read the plan file {where}: {why}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise run.fail("invalid_input", f"{where} is not a plan: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise run.fail(
            "invalid_input", f"{where} is not a plan: expected a JSON object from `refundkit plan`"
        )
    try:
        return Plan.from_dict(data)
    except RefundkitError as exc:
        why = exc.message
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    raise run.fail("invalid_input", f"{where} is not a usable plan: {why}")


@kit_command(cli, "execute")
@click.argument("plan_file", metavar="PLAN_FILE")
@click.option("--reason", metavar="R", help="Why, for every leg's refund.")
@click.option("--actor", metavar="A", help="Who asks, for the audit trail, e.g. support:alice.")
def execute_command(run: Run, plan_file: str, reason: str | None, actor: str | None) -> None:
    """Run a plan saved by `refundkit plan --out` (PLAN_FILE, or - for stdin).

    Each leg is a refund with an idempotency key derived from the plan, so executing the same
    plan again changes nothing. A plan whose payments changed since it was made is refused
    (stale_plan, exit 2) before any leg runs. Prints each leg's status and refund; exits 1
    if a leg failed, was refused or its outcome is unknown.
    """
    plan = read_plan(run, plan_file)
    report_result(run, run.kit.execute(plan, reason=reason, actor=actor))


@kit_command(cli, "refund-balance")
@click.argument("customer_id")
@click.option("--amount", required=True, metavar="DECIMAL", help="How much, e.g. 50.00.")
@_CURRENCY_OPTION
@_STRATEGY_OPTION
@click.option("--reason", metavar="R", help="Why, for every refund.")
@click.option("--actor", metavar="A", help="Who asks, for the audit trail, e.g. support:alice.")
def refund_balance_command(
    run: Run,
    customer_id: str,
    amount: str,
    currency: str | None,
    strategy: str,
    reason: str | None,
    actor: str | None,
) -> None:
    """Send part of a customer's balance back to the cards of the payments that funded it.

    Plans over the balance lots (like `refundkit plan --scope balance`) and executes at once,
    one refund per lot. A balance that cannot cover the amount is refused before any refund
    (exit 2). Output and exit codes as `refundkit execute`.
    """
    money = parse_amount(amount, currency or DEFAULT_CURRENCY)
    result = run.kit.refund_balance(
        customer_id, money, strategy=strategy.lower(), reason=reason, actor=actor
    )
    report_result(run, result)


# --- the dashboard (refundkit.dashboard is imported only by these commands) --------------------


@kit_command(cli, "serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--demo", is_flag=True, help="Serve a fresh demo store with demo users (printed at start)."
)
def serve_command(run: Run, host: str, port: int, demo: bool) -> None:
    """Serve the admin dashboard (docs/dashboard.md) over the store.

    Users, roles, the session key and the support refund limit come from the [dashboard] table
    of the configuration file. With --demo: a fresh demo store and demo users instead.
    """
    from .dashboard import _serve, create_app, settings_from_config

    if demo:
        d = _serve.open_demo()
        kit, settings = d.kit, d.settings
        for line in _serve.demo_banner(d, f"http://{host}:{port}/"):
            click.echo(line)
    else:
        settings = settings_from_config(run.config.section("dashboard"))
        kit = run.kit
    try:
        _serve.run_server(create_app(kit, settings), host, port, click.echo)
    finally:
        kit.close()


@cli.group("dashboard")
def dashboard_group() -> None:
    """Dashboard helpers (see `refundkit serve`)."""


@kit_command(dashboard_group, "hash-password", store=False)
def hash_password_command(run: Run) -> None:
    """Print an argon2 hash for a [[dashboard.users]] password_hash. The password is asked
    for at a prompt (never an argument, so it stays out of shell history)."""
    from .dashboard import hash_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise run.fail("weak_password", "a dashboard password needs at least 8 characters")
    hashed = hash_password(password)
    if run.as_json:
        run.emit({"password_hash": hashed})
    else:
        click.echo(hashed)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``refundkit`` console script."""
    cli.main(args=argv, prog_name="refundkit")


__all__ = ["CliFailure", "cli", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
