"""The admin dashboard: a Starlette app over a ``RefundKit``, server-rendered, no JavaScript.

Every page reads through the kit's facade (quote, payment, refunds, events, journal, balance,
plan_refund, execute); refunds above a user's limit (of a payment or of a customer's balance)
go to ``Approvals``. Every POST form carries the session's CSRF token. The session cookie is
signed (HttpOnly, SameSite=Lax, Secure over HTTPS) and holds the token of a session the store
keeps (``_sessions``): signing out, a new password or the lifetime end it for every copy.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .._approvals import Allowance, Approval, Approvals
from .._errors import (
    CardDataRefused,
    GatewayError,
    InvalidInput,
    InvalidPlan,
    NotFound,
    RefundkitError,
)
from .._kit import RefundKit
from .._model import Payment, Refund, new_id
from .._money import Money
from .._pans import redact_pans
from .._planner import Plan, PlanResult
from .._validate import refuse_card_numbers
from ._middleware import SecurityHeaders, SessionCookie
from ._proxy import TrustedProxies
from ._sessions import Sessions
from ._settings import APPROVERS, REFUNDERS, DashboardSettings, User
from ._throttle import Attempt, SignInThrottle

log = logging.getLogger("refundkit.dashboard")

HERE = Path(__file__).parent
SESSION_COOKIE = "refundkit_session"
#: How many payments one listing shows (the search narrows it).
LISTED = 200

#: A page: runs in a worker thread, as the kit's calls block (the store, a gateway).
Handler = Callable[[Request, FormData], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


class Dashboard:
    """The handlers, sharing the kit, the settings and the templates."""

    def __init__(self, kit: RefundKit, settings: DashboardSettings) -> None:
        self.kit = kit
        self.settings = settings
        self.approvals = Approvals(kit)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates = Jinja2Templates(env=env)
        # Verifying against a real hash for unknown names keeps their timing alike.
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        # Both on the kit's clock (tests move it), both in the kit's store.
        self.sessions = Sessions(kit.store, lambda: kit.clock(), settings.session_lifetime)
        self.throttle = SignInThrottle(
            kit.store,
            lambda: kit.clock(),
            per_name=settings.sign_in_attempts,
            per_address=settings.sign_in_attempts_per_address,
            window=settings.sign_in_window,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def user(self, request: Request) -> User | None:
        """Who is signed in: the live session the cookie names (looked up once a request)."""
        try:
            known: User | None = request.state.user
        except AttributeError:
            known = request.state.user = self.sessions.user(
                request.session.get("sid"), self.settings.users
            )
        return known

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("error", None)
        context |= {
            "user": self.user(request),
            "csrf": csrf_token(request),
            "flash": request.session.pop("flash", None),
            "approvers": APPROVERS,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def page(self, roles: tuple[str, ...] | None = None) -> Callable[[Handler], Endpoint]:
        """Sign-in required (and one of ``roles``); POSTs must carry the CSRF token."""

        def decorator(handler: Handler) -> Endpoint:
            async def wrapped(request: Request) -> Response:
                user = await run_in_threadpool(self.user, request)
                if user is None:
                    if request.method == "POST":
                        raise HTTPException(403, "Sign in first.")
                    return RedirectResponse("/login", status_code=303)
                form = await checked_form(request) if request.method == "POST" else FormData()
                if roles is not None and user.role not in roles:
                    raise HTTPException(403, f"Your role ({user.role}) may not do this.")
                return await run_in_threadpool(handler, request, form)

            return wrapped

        return decorator

    # --- sign-in ----------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        await run_in_threadpool(self.user, request)
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await checked_form(request)
        await run_in_threadpool(self.user, request)  # who was signed in, for the page
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        user = self.settings.users.get(name)
        # The connection's peer, or what a configured trusted proxy says (TrustedProxies).
        address = request.client.host if request.client else "unknown"
        attempt = await run_in_threadpool(self.throttle.attempt, name, address)
        if attempt.wait:
            # The name is whatever a stranger typed: a card number must not reach the log.
            shown = redact_pans(name[:64])
            log.warning("dashboard sign-in throttled: %r from %s", shown, address)
            minutes = math.ceil(attempt.wait / 60)
            response = self.render(
                request,
                "login.html",
                429,
                error=f"Too many failed sign-ins. Try again in {minutes} minute"
                + ("s." if minutes != 1 else "."),
            )
            response.headers["Retry-After"] = str(attempt.wait)
            return response
        if not await run_in_threadpool(self._password_ok, user, password):
            # The attempt stays counted as a failure.
            return self.render(request, "login.html", 400, error="Wrong name or password.")
        assert user is not None
        return await run_in_threadpool(self._signed_in, request, user, attempt)

    def _signed_in(self, request: Request, user: User, attempt: Attempt) -> Response:
        self.throttle.succeeded(user.name, attempt)
        self.sessions.end(request.session.get("sid"))  # one signed in before, in this browser
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in
        request.session["sid"] = self.sessions.open(user)
        log.info("dashboard sign-in: %s (%s)", user.name, user.role)
        return RedirectResponse("/payments", status_code=303)

    def _password_ok(self, user: User | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return (
                self._hasher.verify(user.password_hash if user else self._dummy_hash, password)
                and user is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    async def logout(self, request: Request) -> Response:
        """Ends the session in the store: a copy of the cookie signs in no more."""
        await checked_form(request)
        await run_in_threadpool(self.sessions.end, request.session.get("sid"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- payments ---------------------------------------------------------------------------

    def payments(self, request: Request, form: FormData) -> Response:
        q = request.query_params.get("q", "").strip()
        refuse_card_numbers(q, "the search")  # refundkit holds none: not searched, not shown
        found = [p for p in self.kit.payments() if _matches(p, q)]
        listed = found[:LISTED]
        return self.render(request, "payments.html", q=q, payments=listed,
                           refundable=self._refundable(listed),
                           more=max(0, len(found) - LISTED))  # fmt: skip

    def _refundable(self, payments: list[Payment]) -> dict[str, Money]:
        """What may go back now, per payment: the quote's maximum (a top-up's spent balance,
        disputes and plugin rules included), not just the amount less refunds."""
        return {p.id: self.kit.quote(p.id).max_amount for p in payments}

    def payment(self, request: Request, form: FormData) -> Response:
        return self.payment_page(request, request.path_params["payment_id"])

    def payment_page(
        self,
        request: Request,
        payment_id: str,
        status_code: int = 200,
        error: str | None = None,
        amount: str | None = None,
        reason: str = "",
    ) -> Response:
        payment = self.kit.payment(payment_id)
        quote = self.kit.quote(payment_id)
        refunds = self.kit.refunds(payment_id)
        user = self.user(request)
        assert user is not None
        cur = payment.amount.currency
        return self.render(
            request,
            "payment.html",
            status_code,
            payment=payment,
            quote=quote,
            refunds=refunds,
            # Who decided a refund that was in manual review, and what they saw.
            resolutions={r.id: self.kit.resolution(r.id) for r in refunds if r.status.final},
            approvals=self.approvals.find(payment_id=payment_id),
            events=[e for r in refunds for e in self.kit.events(refund_id=r.id)],
            journal=[line for r in refunds for line in self.kit.journal(r.id)],
            can_refund=user.role in REFUNDERS,
            limit=self.settings.refund_limit(user.role, cur),
            amount=amount if amount is not None else quote.default_amount.decimal_str(),
            reason=reason,
            key=new_id("dash-"),
            error=error,
        )

    def refund(self, request: Request, form: FormData) -> Response:
        payment_id = request.path_params["payment_id"]
        user = self.user(request)
        assert user is not None
        amount_text = str(form.get("amount", "")).strip()
        reason = str(form.get("reason", "")).strip()
        payment = self.kit.payment(payment_id)
        try:
            if not reason:
                raise InvalidInput("Give a reason for the refund.")
            refuse_card_numbers(amount_text, "the amount")  # else it is filled back in
            amount = Money.parse(amount_text, payment.amount.currency)
            why = self._over_allowance(user, payment.customer_id, [(payment_id, amount)])
            if why is not None:
                approval = self.approvals.request(
                    payment_id, amount, reason=reason, requested_by=user.name
                )
                flash(request, "approval", f"{why} {approval.sentence()}", approval.id)
                return RedirectResponse(f"/payments/{payment_id}", status_code=303)
            refund = self.kit.refund(
                payment_id,
                amount,
                reason=reason,
                actor=user.name,
                idempotency_key=str(form.get("key", "")) or None,
            )
        except GatewayError as exc:
            if exc.refund is None:
                return self.payment_page(request, payment_id, 502, str(exc), amount_text, reason)
            refund = exc.refund
        except CardDataRefused as exc:  # not filled back in: the page would show it again
            return self.payment_page(request, payment_id, 400, str(exc))
        except RefundkitError as exc:
            return self.payment_page(request, payment_id, 400, str(exc), amount_text, reason)
        flash(request, refund.status.value, _refund_sentence(refund), refund.id)
        return RedirectResponse(f"/payments/{payment_id}", status_code=303)

    # --- customers --------------------------------------------------------------------------

    def customer(self, request: Request, form: FormData) -> Response:
        return self.customer_page(request, request.path_params["customer_id"])

    def customer_page(
        self,
        request: Request,
        customer_id: str,
        status_code: int = 200,
        error: str | None = None,
        plan: Plan | None = None,
    ) -> Response:
        balance = self.kit.balance(customer_id)
        payments = self.kit.payments(customer_id)
        if not payments:
            raise NotFound(f"no customer {customer_id!r}")
        user = self.user(request)
        assert user is not None
        currencies = sorted({p.amount.currency for p in payments})
        return self.render(
            request,
            "customer.html",
            status_code,
            customer_id=customer_id,
            balance=balance,
            payments={p.id: p for p in payments},
            refundable=self._refundable(payments),
            currencies=currencies,
            can_refund=user.role in REFUNDERS,
            approvals=self.approvals.find(customer_id=customer_id, status="pending"),
            plan=plan,
            plan_json=json.dumps(plan.to_dict()) if plan else "",
            limit=self.settings.refund_limit(user.role, plan.allocation.currency) if plan else None,
            error=error,
        )

    def preview(self, request: Request, form: FormData) -> Response:
        customer_id = request.path_params["customer_id"]
        try:
            total = Money.parse(
                str(form.get("amount", "")).strip(), str(form.get("currency", "")).upper()
            )
            plan = self.kit.plan_refund(customer_id, total, scope="balance")
        except RefundkitError as exc:
            return self.customer_page(request, customer_id, 400, str(exc))
        return self.customer_page(request, customer_id, plan=plan)

    def refund_balance(self, request: Request, form: FormData) -> Response:
        customer_id = request.path_params["customer_id"]
        user = self.user(request)
        assert user is not None
        try:
            # Malformed (even deeply nested) JSON is InvalidPlan: a 400 with the sentence.
            plan = Plan.from_json(str(form.get("plan", "")))
            if plan.customer_id != customer_id or plan.scope != "balance":
                raise InvalidPlan("this plan is for another customer or scope")
            planned = plan.allocation.planned
            reason = str(form.get("reason", "")).strip() or None
            legs = [(leg.payment_id, leg.amount) for leg in plan.legs]
            why = self._over_allowance(user, customer_id, legs)
            if why is not None:
                # Above the allowance it waits: approving plans again then (same strategy).
                if not reason:
                    raise InvalidInput("Give a reason for the refund.")
                approval = self.approvals.request_balance(
                    customer_id, planned, reason=reason, requested_by=user.name,
                    strategy=plan.strategy,
                )  # fmt: skip
                flash(request, "approval", f"{why} {approval.sentence()}", approval.id)
                return RedirectResponse(f"/customers/{customer_id}", status_code=303)
            # execute refuses a leg outside the customer's balance (InvalidPlan) before any runs.
            result = self.kit.execute(plan, reason=reason, actor=user.name)
        except RefundkitError as exc:
            return self.customer_page(request, customer_id, 400, str(exc))
        flash(request, "succeeded", f"Balance refund: {_legs_sentence(result)}.", plan.id)
        return RedirectResponse(f"/customers/{customer_id}", status_code=303)

    def _over_allowance(
        self, user: User, customer_id: str, refunds: list[tuple[str, Money]]
    ) -> str | None:
        """Why these refunds by ``user`` wait for approval (None: they run now). A support
        user's limits count what they refunded already: of the payment, and of the customer
        in the last 24 hours (docs/dashboard.md)."""
        cur = refunds[0][1].currency
        allowance = Allowance(
            per_payment=self.settings.refund_limit(user.role, cur),
            per_customer_day=self.settings.daily_refund_limit(user.role, cur),
        )
        return self.approvals.over_allowance(user.name, customer_id, refunds, allowance)

    # --- approvals --------------------------------------------------------------------------

    def approvals_page(self, request: Request, form: FormData) -> Response:
        return self.render(
            request,
            "approvals.html",
            pending=self.approvals.find(status="pending"),
            decided=self.approvals.find()[:50],
        )

    def decide(self, request: Request, form: FormData) -> Response:
        decision = request.path_params["decision"]
        if decision not in ("approve", "reject"):
            raise HTTPException(404, "Not found.")
        approval = self.approvals.get(request.path_params["approval_id"])
        user = self.user(request)
        assert user is not None
        note = str(form.get("note", "")).strip()
        back = str(form.get("back", "")) or "/approvals"
        if back not in ("/approvals", _approval_page(approval)):
            back = "/approvals"
        try:
            if decision == "approve" and approval.kind == "balance":
                result = self.approvals.approve_balance(approval.id, approver=user.name, note=note)
                done = f"Approved. Balance refund: {_legs_sentence(result)}."
                flash(request, "succeeded", done, result.plan_id)
            elif decision == "approve":
                refund = self.approvals.approve(approval.id, approver=user.name, note=note)
                flash(
                    request, refund.status.value, "Approved. " + _refund_sentence(refund), refund.id
                )
            else:
                self.approvals.reject(approval.id, approver=user.name, note=note)
                what = "balance refund" if approval.kind == "balance" else "refund"
                rejected = f"Rejected the {what} of {approval.amount}."
                flash(request, "rejected", rejected, approval.id)
        except GatewayError as exc:
            flash(request, "failed", f"Approved, but the gateway refused: {exc}", approval.id)
        except RefundkitError as exc:
            flash(request, "error", str(exc), approval.id)
        return RedirectResponse(back, status_code=303)

    def resolve(self, request: Request, form: FormData) -> Response:
        """A billing admin decides a refund in manual review (``kit.resolve``): the gateway
        is asked first, and a disagreement changes nothing."""
        refund = self.kit.get_refund(request.path_params["refund_id"])
        user = self.user(request)
        assert user is not None
        outcome = str(form.get("outcome", ""))
        try:
            done = self.kit.resolve(
                refund.id, outcome, actor=user.name, note=str(form.get("note", "")).strip()
            )
            flash(request, done.status.value, f"Resolved as {done.status}: {done.amount}.", done.id)
        except RefundkitError as exc:
            flash(request, "error", str(exc), refund.id)
        return RedirectResponse(f"/payments/{refund.payment_id}", status_code=303)


# --- helpers ----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token against the session's."""
    form = await request.form()
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise HTTPException(403, "This form has expired or was not sent by this dashboard.")
    return form


def flash(request: Request, kind: str, message: str, ref: str | None = None) -> None:
    request.session["flash"] = {"kind": kind, "message": message, "ref": ref}


def _approval_page(approval: Approval) -> str:
    """The page an approval belongs to: its payment's, or its customer's for a balance one."""
    if approval.payment_id is None:
        return f"/customers/{approval.customer_id}"
    return f"/payments/{approval.payment_id}"


def _legs_sentence(result: PlanResult) -> str:
    return ", ".join(f"{r.leg.amount} to {r.leg.payment_id}: {r.status}" for r in result.legs)


def _refund_sentence(refund: Refund) -> str:
    words = {
        "succeeded": "went back to the card",
        "pending": "is pending: the gateway confirms later",
        "failed": "failed: nothing was refunded",
        "unknown": "has an unknown outcome: recovery will ask the gateway",
        "reserved": "has an unknown outcome: recovery will ask the gateway",
        "submitted": "has an unknown outcome: recovery will ask the gateway",
        "manual_review": "needs a person to check it with the gateway",
    }
    what = words.get(refund.status.value, refund.status.value)
    failure = f" ({refund.failure_message})" if refund.failure_message else ""
    return f"Refund of {refund.amount} {what}{failure}."


def _matches(payment: Any, q: str) -> bool:
    if not q:
        return True
    q = q.lower()
    fields = (payment.id, payment.customer_id, payment.gateway_payment_id, payment.invoice_id)
    return any(q in f.lower() for f in fields if f)


def create_app(
    kit: RefundKit,
    settings: DashboardSettings,
    *,
    https_only: bool = False,
    gateway_webhooks: bool = True,
    sandbox_webhooks: bool | None = None,
) -> Starlette:
    """The dashboard as an ASGI app over ``kit``. The session cookie is Secure on requests
    that came over HTTPS, and always with ``https_only`` or ``[dashboard] https`` (behind a
    TLS proxy that does not say ``X-Forwarded-Proto``). With ``gateway_webhooks`` it also
    receives the gateways' webhooks at ``POST /webhooks/{gateway}`` (refundkit.asgi), so one
    ``refundkit serve`` does both; ``sandbox_webhooks`` as ``webhook_routes``' ``sandbox``
    (by default: only when the kit configures the sandbox)."""
    from ..asgi import PREFIX, BodyLimit, webhook_routes

    d = Dashboard(kit, settings)
    routes = _routes(d)
    if gateway_webhooks:
        routes += webhook_routes(
            kit, max_body_bytes=settings.webhook_max_body_bytes, sandbox=sandbox_webhooks
        )
    lifetime = int(settings.session_lifetime.total_seconds())
    middleware = [
        Middleware(TrustedProxies, proxies=settings.trusted_proxies),
        # The webhook route carries its own limit.
        Middleware(BodyLimit, limit=settings.max_body_bytes, skip=(PREFIX,)),
        Middleware(SecurityHeaders),
        Middleware(
            SessionCookie,
            secret_key=settings.secret_key,
            cookie=SESSION_COOKIE,
            max_age=lifetime,
            https_only=https_only or settings.https,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=_handlers(d))
    app.state.dashboard = d
    return app


def _routes(d: Dashboard) -> list[BaseRoute]:
    any_user = d.page()
    refunders = d.page(REFUNDERS)
    approvers = d.page(APPROVERS)

    async def home(request: Request) -> Response:
        return RedirectResponse("/payments", status_code=303)

    return [
        Route("/", home),
        Route("/login", d.login_form, methods=["GET"]),
        Route("/login", d.login, methods=["POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Route("/payments", any_user(d.payments)),
        Route("/payments/{payment_id}", any_user(d.payment)),
        Route("/payments/{payment_id}/refund", refunders(d.refund), methods=["POST"]),
        Route("/customers/{customer_id}", any_user(d.customer)),
        Route("/customers/{customer_id}/preview", refunders(d.preview), methods=["POST"]),
        Route(
            "/customers/{customer_id}/refund-balance", refunders(d.refund_balance), methods=["POST"]
        ),
        Route("/approvals", any_user(d.approvals_page)),
        Route("/approvals/{approval_id}/{decision:str}", approvers(d.decide), methods=["POST"]),
        Route("/refunds/{refund_id}/resolve", approvers(d.resolve), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def _handlers(d: Dashboard) -> dict[Any, Any]:
    """Errors as pages: a typed refusal says its sentence, anything missing is a 404."""

    async def not_found(request: Request, exc: Exception) -> Response:
        message = str(exc) if isinstance(exc, RefundkitError) else "Not found."
        return d.render(request, "error.html", 404, message=message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return d.render(request, "error.html", exc.status_code, message=exc.detail)

    async def refused(request: Request, exc: Exception) -> Response:
        return d.render(request, "error.html", 400, message=str(exc))

    return {NotFound: not_found, HTTPException: http_error, RefundkitError: refused}


__all__ = ["Dashboard", "create_app"]
