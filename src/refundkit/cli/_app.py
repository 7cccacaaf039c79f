"""The root group and the plumbing every command shares: options, the store, errors, exit codes.

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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from .._config import CONFIG_ENV, DEFAULT_CONFIG, Config, load_config
from .._errors import GatewayError, RefundkitError, RefundNotAllowed
from .._pans import redact_pans
from ._render import one_line

if TYPE_CHECKING:
    from rich.console import Console

    from .._kit import RefundKit

DEFAULT_DB = "sqlite:///refundkit.db"
DB_ENV = "REFUNDKIT_DB"


# --- errors -----------------------------------------------------------------------------------


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
        message = redact_pans(message)  # click's usage errors echo what was typed
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
        return f"error: {self.code}: {one_line(self.message)}{note}"

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
    """Open the store at ``url``. What stops it is typed (``InvalidStore``, exit 2;
    ``StoreUnavailable``, exit 1; docs/cli.md); anything else is still one error line."""
    from .._kit import RefundKit

    try:
        return RefundKit.open(url, create=create, gateways=gateways or None)
    except RefundkitError:
        raise
    except Exception as exc:  # nothing refundkit knows: say what, without a traceback
        raise CliFailure(
            "store_unavailable",
            f"cannot open the store {_safe_url(url)}: {type(exc).__name__}: {one_line(str(exc))}",
            exit_code=1,
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


# --- the root group ---------------------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> None:
    """The ``refundkit`` console script."""
    cli.main(args=argv, prog_name="refundkit")
