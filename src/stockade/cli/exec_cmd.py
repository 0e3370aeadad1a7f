"""``stockade exec``: run one argv, shell line or task as a supervised job.

The ad-hoc path (``exec -- CMD``) builds a plain RunSpec and never imports
the config models, the HTTP stack or the database layer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stockade.cli.sandbox_opts import TASK_RETRY, add_sandbox_options, sandbox_profile, task_spec
from stockade.cli.startup import asyncio_without_tls, settle
from stockade.cli.values import duration, parse_input, size
from stockade.errors import CleanupError, ConfigError, StockadeError, UsageError
from stockade.paths import workspace_path, writable_file
from stockade.runner.spec import INPUT_FORMATS, OUTPUT_FORMATS, RunSpec

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "defaults", "main"]

SHORT_HELP = "Run one command or task as a supervised job."


def defaults() -> dict[str, Any]:
    """The options of a bare ``exec -- CMD``: what :func:`build_parser` gives
    for no option at all, without importing argparse (a test keeps the two
    in step)."""
    none = ("task", "shell_line", "config_path", "input_text", "input_format", "output_format",
            "timeout", "idle_timeout", "kill_grace", "stop_signal", "max_output",
            "success_codes", "retry_codes", "workdir", "data_dir", "result_path",
            "sandbox", "memory", "pids", "cpus", "network")  # fmt: skip
    opts: dict[str, Any] = dict.fromkeys(none)
    opts.update(env_items=[], secret_names=[], binds=[], json_events=False, no_retry=False)
    return opts


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter with the width given, so argparse does not import
    shutil (and bz2, lzma with it) just to ask for the terminal size."""
    import argparse

    try:
        width = os.get_terminal_size(2).columns - 2
    except OSError:
        width = 78
    return argparse.HelpFormatter(prog, width=max(width, 40))


def build_parser() -> argparse.ArgumentParser:
    """The ``stockade exec`` option parser.

    argparse rather than click here on purpose: this is the hot path a user
    (or a build farm) starts thousands of times, and importing click costs
    more than everything ``exec -- true`` does. Other commands use click.
    Only a command line with options before ``--`` (or none) builds it.
    """
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse that reports bad usage as a UsageError (one line, exit 2)."""

        def error(self, message: str) -> Any:
            raise UsageError(message)

    p = _Parser(
        prog="stockade exec",
        formatter_class=_formatter,
        usage="stockade exec [OPTIONS] (-- COMMAND [ARG...] | --shell LINE | TASK)",
        description=SHORT_HELP + " Examples: `stockade exec -- make -j4`; "
        '`stockade exec --timeout 30s --shell \'echo "$INPUT_NAME"\' --input \'{"name": "x"}\'`; '
        "`stockade exec build --input @input.json`.",
    )
    add = p.add_argument
    add("task", nargs="?", metavar="TASK", help="a task from stockade.yaml")
    add(
        "--shell",
        dest="shell_line",
        metavar="LINE",
        help='run LINE with /bin/sh -c (input only as variables or "$1"...)',
    )
    add(
        "-c",
        "--config",
        dest="config_path",
        metavar="FILE",
        help="stockade.yaml to read tasks from",
    )
    add(
        "-i",
        "--input",
        dest="input_text",
        metavar="JSON|@FILE",
        help="the job input: JSON or @file",
    )
    add("--input-format", choices=INPUT_FORMATS, help="how the input reaches the job [env]")
    add(
        "--output-format",
        metavar="FORMAT",
        help="stdout|json_stdout|lines|file:PATH|exit_code_only [stdout]",
    )
    add(
        "-e",
        "--env",
        dest="env_items",
        action="append",
        default=[],
        metavar="K=V",
        help="set a variable (repeatable)",
    )
    add(
        "--secret",
        dest="secret_names",
        action="append",
        default=[],
        metavar="NAME",
        help="pass $NAME from this environment as a masked secret (repeatable)",
    )
    add("--timeout", metavar="DURATION", help="wall-clock limit, e.g. 30s, 10m")
    add("--idle-timeout", metavar="DURATION", help="stop the job after this long without output")
    add("--kill-grace", metavar="DURATION", help="time between stop signal and SIGKILL [5s]")
    add("--stop-signal", metavar="SIGNAL", help="signal that asks the job to stop [SIGTERM]")
    add("--max-output", metavar="SIZE", help="bytes kept per stream, read per output file [1MiB]")
    add("--success-codes", metavar="CODES", help="exit codes meaning success, e.g. 0,3 [0]")
    add("--retry-codes", metavar="CODES", help="exit codes meaning retry [75]")
    add("-C", "--workdir", metavar="DIR", help="the job's working directory (its workspace)")
    add("--data-dir", metavar="DIR", help="where logs go [$STOCKADE_DATA_DIR or ./.stockade]")
    add(
        "--result",
        dest="result_path",
        metavar="FILE",
        help="write the result record as JSON (- for stdout)",
    )
    add(
        "--json",
        dest="json_events",
        action="store_true",
        help="print one JSON event per line instead of the job's output",
    )
    add(
        "--no-retry",
        action="store_true",
        help="run a TASK once, whatever its max_attempts [retry as a worker does]",
    )
    add_sandbox_options(p)
    return p  # fmt: skip


def main(argv: list[str]) -> int:
    """``stockade exec ARGV``: parse, run, and return the exit status."""
    dashdash = "--" in argv
    before, after = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if dashdash else (argv, [])
    )
    try:
        extra: list[str] = []
        if dashdash and not before:  # `exec -- CMD`: nothing for argparse to parse
            opts = defaults()
        else:
            parser = build_parser()
            ns, extra = parser.parse_known_args(before)
            _check_unknown(parser, extra, ns.task)
            opts = vars(ns)
        task = opts["task"]
        args = ([task] if task else []) + (extra or after)
        if dashdash and task:
            raise UsageError(
                f"unexpected {task!r} before --: options go before --, the command after"
            )
        spec, value = _build(tuple(after if dashdash else args), dashdash, opts)
        if opts["result_path"] and opts["result_path"] != "-":
            _checked(writable_file, opts["result_path"], "--result")
        return _run(spec, value, opts)
    except (UsageError, ConfigError) as exc:
        from stockade.printable import printable  # errors only: kept off the start-up

        for line in str(exc).splitlines() or [exc.message]:
            print(f"stockade: error: {printable(line)}", file=sys.stderr)
        return 2
    except StockadeError as exc:
        from stockade.printable import printable

        print(f"stockade: error: {printable(exc.message)}", file=sys.stderr)
        return 1


def _check_unknown(parser: argparse.ArgumentParser, extra: list[str], task: str | None) -> None:
    """Explain an option ``exec`` does not know: the one it probably misspells,
    or, after a TASK word, that a command's own options go after ``--``."""
    unknown = [word for word in extra if word.startswith("-")]
    if not unknown:
        return
    from stockade.suggest import did_you_mean

    word = unknown[0].partition("=")[0]
    # argparse keeps its option strings only in this table (stable since 2.7).
    hint = did_you_mean(word, [o for o in parser._option_string_actions if o.startswith("--")])
    if task and not hint:
        hint = (
            "; to run a command with its own options, put -- before it: "
            f"stockade exec -- {_command_line([task, word])}"
        )
    raise UsageError(f"no such option {word!r}{hint}")


def _command_line(args: list[str]) -> str:
    """``args`` as a shell line to copy, or quoted by Python when one holds a
    control character (a hint must never carry one to the terminal)."""
    if all(arg.isprintable() for arg in args):
        import shlex

        return shlex.join(args)
    return " ".join(repr(arg) for arg in args)


def _build(args: tuple[str, ...], dashdash: bool, opts: dict[str, Any]) -> tuple[RunSpec, Any]:
    shell = opts["shell_line"]
    if shell is not None:
        if args:
            raise UsageError("--shell takes the whole line; do not also give a command")
        base = RunSpec(shell=shell)
    elif dashdash:
        if not args:
            raise UsageError("no command after --: try `stockade exec -- echo hello`")
        base = RunSpec(argv=list(args))
    elif len(args) == 1:
        base = _task_spec(args[0], opts)
    elif not args:
        raise UsageError("nothing to run: give a TASK, --shell LINE, or -- COMMAND [ARG...]")
    else:
        raise UsageError(
            f"unexpected {args[1]!r}: to run a command, put -- before it: "
            f"stockade exec [OPTIONS] -- {_command_line(list(args))}"
        )
    value = parse_input(opts["input_text"])
    return _apply_options(base, opts), value


def _task_spec(name: str, opts: dict[str, Any]) -> RunSpec:
    """Load stockade.yaml (only now: the ad-hoc path never pays for it); the
    task's sandbox profile is kept in ``opts`` for :func:`_run`."""
    return task_spec(name, opts)


def _codes(text: str, option: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise UsageError(f"{option} takes exit codes like 0,3: got {text!r}") from exc
    bad = [c for c in codes if not 0 <= c <= 255]
    if bad:
        raise UsageError(f"{option}: exit codes are 0..255, got {bad[0]}")
    return codes


def parse_signal(text: str) -> int:
    """``TERM``, ``SIGTERM`` or ``15`` to a signal number."""
    name = text.strip().upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError as exc:
        raise UsageError(f"--stop-signal: unknown signal {text!r}; try TERM, INT or HUP") from exc


def _apply_options(spec: RunSpec, o: dict[str, Any]) -> RunSpec:
    """The spec with every option the user gave laid over it."""
    changes: dict[str, Any] = {
        "env": _env_items(spec.env, o["env_items"]),
        "secrets": _secrets(spec.secrets, o["secret_names"]),
    }
    if o["input_format"]:
        changes["input_format"] = o["input_format"]
    if o["output_format"]:
        changes["output_format"], changes["output_path"] = _output_format(o["output_format"])
    for key in ("timeout", "idle_timeout", "kill_grace"):
        if o[key]:
            changes[key] = duration(o[key], "--" + key.replace("_", "-"))
    if o["stop_signal"]:
        changes["stop_signal"] = parse_signal(o["stop_signal"])
    if o["max_output"]:
        changes["max_output"] = size(o["max_output"], "--max-output")
    if o["success_codes"]:
        changes["success_codes"] = _codes(o["success_codes"], "--success-codes")
    if o["retry_codes"]:
        changes["retry_codes"] = _codes(o["retry_codes"], "--retry-codes")
    for key in ("workdir", "data_dir"):
        if o[key]:
            changes[key] = o[key]
    try:
        return dataclasses.replace(spec, **changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _output_format(text: str) -> tuple[str, str | None]:
    fmt, _, path = text.partition(":")
    if fmt not in OUTPUT_FORMATS or (fmt == "file") != bool(path):
        raise UsageError(
            f"--output-format: unknown format {text!r}; "
            "use stdout, json_stdout, lines, file:PATH or exit_code_only"
        )
    if path:
        _checked(workspace_path, path, "--output-format file:PATH")
    return fmt, path or None


def _checked(check: Callable[[str, str], str], value: str, option: str) -> None:
    """Run a path check from :mod:`stockade.paths` before anything is launched."""
    try:
        check(value, option)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _env_items(base: dict[str, str], items: tuple[str, ...]) -> dict[str, str]:
    env = dict(base)
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--env takes K=V, got {item!r}")
        env[key] = val
    return env


def _secrets(base: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    secrets = dict(base)
    for name in names:
        if name not in os.environ:
            raise UsageError(f"--secret {name}: ${name} is not set in this environment")
        secrets[name] = os.environ[name]
    return secrets


def _run(spec: RunSpec, value: Any, opts: dict[str, Any]) -> int:
    asyncio = asyncio_without_tls()
    from stockade.runner.attempt import run
    from stockade.runner.policy import RetryPolicy
    from stockade.runner.sinks import JsonEventSink, TerminalSink
    from stockade.sandbox import fence
    from stockade.sandbox.proctree import enable_subreaper

    settle()  # all the run needs is loaded
    enable_subreaper()
    fence.start()  # the job dies with this process, however it dies

    def sink() -> Any:  # one per attempt: an attempt closes its sinks as it ends
        return JsonEventSink(1) if opts["json_events"] else TerminalSink(1, 2)

    sandbox = None
    profile = sandbox_profile(opts)
    spec.inherit_env = True  # the user's own command: their environment (less STOCKADE_*)
    if profile is not None:
        from stockade.sandbox.registry import create, prepare_spec

        spec = prepare_spec(spec, profile, own=True)
        sandbox = create(profile)
        sandbox.setup()

    received: list[int] = []
    retry = RetryPolicy(max_attempts=1) if opts["no_retry"] else opts.get(TASK_RETRY, RetryPolicy())

    async def main() -> Any:
        from stockade.runner.cancel import Stop

        cancel = Stop()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            # The first signal stops the job (stop signal, grace, SIGKILL); a
            # second one during the grace kills it at once.
            received.append(signum)
            if len(received) == 1:
                cancel.request()
            else:
                cancel.force()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        return await _attempts(
            lambda attempt: run(attempt, value, sinks=[sink()], sandbox=sandbox, cancel=cancel),
            spec, retry, cancel, quiet=opts["json_events"] or False,
        )  # fmt: skip

    try:
        result = asyncio.run(main())
    finally:
        if sandbox is not None:
            try:
                sandbox.cleanup()
            except CleanupError as exc:
                from stockade.printable import printable

                print(f"stockade: error: {printable(exc.message)}", file=sys.stderr)
    if opts["result_path"]:
        _write_result(opts["result_path"], result.to_dict())
    if not opts["json_events"] and result.outcome.value != "succeeded":
        _report_failure(result)
    if received and result.outcome.value != "succeeded":  # in an attempt or its backoff
        return 128 + received[0]  # as a shell reports the signal that stopped us: 130 for Ctrl-C
    return int(result.exit_status)


def _report_failure(result: Any) -> None:
    """The failure line on stderr (with the attempts made), then what it used."""
    from stockade.runner.result import describe

    print(f"stockade: {describe(result, result.attempt)}", file=sys.stderr)
    if result.usage:
        from stockade.sandbox.usage import summary

        print(f"stockade: used {summary(result.usage)}", file=sys.stderr)


async def _attempts(
    run: Callable[[RunSpec], Awaitable[Any]], spec: RunSpec, retry: Any, cancel: Any, *, quiet: bool
) -> Any:
    """Run ``spec`` until the task's retry policy (``retry``) says no more,
    or ``cancel`` is requested (during an attempt or its backoff); the last
    attempt's result."""
    import asyncio

    from stockade.runner.result import describe

    attempt = spec
    while True:
        result = await run(attempt)
        if retry.max_attempts == 1 or cancel.requested.done():
            return result
        from random import random  # only here: exec's start-up does not pay for it

        delay = retry.next_delay(result.outcome, attempts=result.attempt, rand=random())
        if delay is None:
            return result
        if not quiet:
            print(
                f"stockade: attempt {result.attempt} of {retry.max_attempts} "
                f"{describe(result).removeprefix(f'job {result.job_id} ')}; "
                f"retrying in {delay:.3g}s",
                file=sys.stderr,
            )
        try:  # the backoff, cut short by Ctrl-C or SIGTERM
            await asyncio.wait_for(asyncio.shield(cancel.requested), delay)
            return result  # stopped between attempts: reported as the signal
        except TimeoutError:
            pass
        attempt = dataclasses.replace(
            attempt, job_id=result.job_id, attempt=result.attempt + 1, state=result.state
        )


def _write_result(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        # The job has run: not a usage error (exit 2 promises nothing ran).
        raise StockadeError(f"--result: cannot write {path!r}: {exc.strerror}") from exc
