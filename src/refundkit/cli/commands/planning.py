"""``refundkit plan``, ``execute`` and ``refund-balance``: a total spread over refunds."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ..._errors import RefundkitError
from ..._money import Money
from ..._planner import STRATEGIES, Plan
from .._app import Run, cli, kit_command
from .._parse import DEFAULT_CURRENCY, parse_amount
from .._render import leg_results_table, legs_table, plural

if TYPE_CHECKING:
    from rich.console import Console

    from ..._planner import LegResult, LegStatus, PlanResult

#: Leg statuses after which a plan counts as done (exit 0); any other status exits 1.
_LEG_DONE = ("succeeded", "pending")


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
            f"Planned: {plan.allocation.planned.format()} in {plural(len(plan.legs), 'refund')}."
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
        f"error: plan_incomplete: {len(not_done)} of {plural(len(result.legs), 'leg')} of "
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
                    f"{words}: {amount.format()} in {plural(len(done), 'refund')}{after}."
                )
    not_done = [r for r in result.legs if r.status not in _LEG_DONE]
    if not_done:
        click.echo(_incomplete_line(result, not_done), err=True)
        raise click.exceptions.Exit(1)


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
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise run.fail("invalid_input", f"{where} is not a plan: not JSON ({why})") from None
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
