"""What every command line of the project shares: a one-line argparse, user errors, the exit codes.

    def main(argv=None) -> int:
        args = build_parser().parse_args(argv)          # OneLineParser: a usage error is one line, exit 2
        return run_command("prog", lambda: body(args))  # UserError, ValueError, ... -> one line, exit 2

A user error prints `prog: error: <argument>: <problem>` on stderr and exits 2 (EXIT_USAGE), with no
traceback; a server that cannot answer (unreachable, too slow, no such model) one line and exit 1
(EXIT_FAILURE); Ctrl-C exits 130; a closed stdout (`... | head`) ends quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .formats.fileio import make_folders, remove_empty_folders, why_not_creatable
from .version import install_hint

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TOKEN_ENV = "STYLEGAN_TOKEN"     # the bearer token of `stylegan serve` (and of `stylegan ui --server`)

# The extra that brings an optional package (by its top-level module name); None: not in an extra, pip install it.
EXTRA_OF = {
    "torch": "torch",
    "onnx": "export",
    "onnxscript": "export",
    "tensorrt": "tensorrt",
    "tensorboard": "train",
    "openvino": "openvino",
    "tritonclient": "triton",
    "sklearn": "editing",
    "gradio": "ui",
    "scipy": None,
}


def install_hint_for(module: str) -> str:
    """What to run to get `module` (a key of EXTRA_OF), from where this install came from."""
    extra = EXTRA_OF[module]
    return install_hint(extra) if extra else f"pip install {module}"


def setting(default: Any, help: str, type: Callable[[str], Any] = str, **argparse_kw: Any) -> Any:
    """A dataclass field that is also a command-line option (--name-with-dashes): a setting's one source."""
    return dataclasses.field(default=default, metadata={"help": help, "type": type, **argparse_kw})


def option_name(field_name: str) -> str:
    """A setting's field name as its option, without the dashes: max_batch -> max-batch."""
    return field_name.replace("_", "-")


def add_settings(parser: argparse.ArgumentParser, settings: type) -> None:
    """One option per field of the dataclass `settings` made with `setting` (dest: the field's name)."""
    for f in dataclasses.fields(settings):
        parser.add_argument(f"--{option_name(f.name)}", dest=f.name, default=f.default, **dict(f.metadata))


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit 2."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help says each option's default, unless its help already does or there is none to say."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default in (None, False, argparse.SUPPRESS) or default == [] \
                or action.option_strings == [] or isinstance(action, argparse._HelpAction):
            return text
        return f"{text} (default: {default})" if text else f"default: {default}"


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2, and whose --help shows the defaults (shared by every
    command line of the project)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line instead of usage + message
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def import_error_message(e: ImportError) -> str:
    """The error's text, plus what to pip install when it names a known optional package and says nothing itself."""
    text = str(e)
    module = (e.name or "").split(".")[0]
    if "pip install" in text or module not in EXTRA_OF:
        return text
    return f"{module} is not installed ({text}); install it with: {install_hint_for(module)}"


def run_command(prog: str, body: Callable[[], int | None],
                user_errors: tuple[type[Exception], ...] = (), quiet: bool = False) -> int:
    """Run a command's body -> exit code: 0 (or what it returns); 2 and one line for a user error
    (UserError, ValueError, FileNotFoundError, ImportError, `user_errors`; quiet: no line, as on the
    other processes of a distributed run); 130 on Ctrl-C."""
    try:
        code = body()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
    except BrokenPipeError:  # e.g. `stylegan info M | head`: stop writing, exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ImportError as e:
        return EXIT_USAGE if quiet else report(prog, import_error_message(e))
    except (UserError, ValueError, FileNotFoundError, *user_errors) as e:
        return EXIT_USAGE if quiet else report(prog, str(e))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:
        if not _remote_error(e):
            raise
        report(prog, str(e))  # a server that is down, slow, or lacks the model: one line, exit 1
        return EXIT_FAILURE
    return 0 if code is None else code


def flag_names(message: str, fields: tuple[str, ...]) -> str:
    """'opt_batch: must be >= min_batch' -> '--opt-batch: must be >= --min-batch' when the message is about one
    of `fields` (a library argument's ValueError, reported with the flags the user typed); a switch set in
    Python words ('force=True') becomes its flag ('--force') wherever it stands."""
    for name in fields:
        message = re.sub(rf"(?<![-\w]){name}=True\b", "--" + name.replace("_", "-"), message)
    head, sep, rest = message.partition(":")
    if not sep or head not in fields:
        return message
    for name in fields:  # other fields named in the text: only the unmistakable ones (with an underscore)
        if "_" in name:
            rest = re.sub(rf"(?<![-\w]){name}(?!\w)", "--" + name.replace("_", "-"), rest)
    return "--" + head.replace("_", "-") + ":" + rest


def _remote_error(e: Exception) -> bool:
    """A failed call to a server (the client's ClientError: our gRPC server or Triton). Its module is only
    looked up, never imported: if nothing imported it, nothing raised one."""
    errors = sys.modules.get("stylegan_sdk.errors")
    return errors is not None and isinstance(e, errors.ClientError)


def report(prog: str, message: str) -> int:
    """Print `prog: error: message` (one line) on stderr; returns EXIT_USAGE."""
    print(f"{prog}: error: {' '.join(line.strip() for line in message.splitlines())}", file=sys.stderr)
    return EXIT_USAGE


def check_output(path: str, flag: str, folder: bool = False) -> None:
    """UserError `flag: ...` unless `path` can be written as a file (or a folder) once its missing
    parent folders are made; creates nothing, so a command checks before it works."""
    problem = why_not_creatable(path, folder=folder)
    if problem is not None:
        raise UserError(f"{flag}: {problem}")


@contextlib.contextmanager
def writing(path: str, flag: str, folder: bool = False) -> Iterator[None]:
    """Around the block that writes output `path` (a file, or a folder with folder=True), once the work is
    done: make its missing folders, remove them again if the block fails; an OS error -> UserError(flag)."""
    target = path if folder else os.path.dirname(os.path.abspath(path))
    try:
        made = make_folders(target)
    except OSError as e:
        raise UserError(f"{flag}: cannot create {target!r}: {e.strerror or e}") from None
    try:
        yield
    except OSError as e:
        remove_empty_folders(made)
        raise UserError(f"{flag}: cannot write {path!r}: {e.strerror or e}") from None
    except BaseException:
        remove_empty_folders(made)
        raise


__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_USAGE", "EXTRA_OF", "OneLineParser", "UserError",
           "check_output", "flag_names", "import_error_message", "report", "run_command", "writing"]
