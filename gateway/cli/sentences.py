"""What the command line says when something is wrong: one sentence on stderr, exit 1.

- Every error ends as one sentence a person can act on; the traceback only with `--debug`.
- Every command reads its settings through `load_settings`, so each configuration sentence
  is worded here once, whether `serve` or `echo` meets it.
- A configuration error names the file (or the environment variable), the key, and the
  setting meant when the key is a near miss ("did you mean dicom_port?").
- A configuration file that is missing, a folder, unreadable, not UTF-8 or not TOML is named
  with what to do; a TOML syntax error names the line and the column.
- `PACS_GATEWAY_*` variables that are no setting are warned about (a typo there is otherwise
  silently ignored, and the default used).
Sentences are printed as plain text, never as rich markup: "[[pacs]]" prints as typed.
"""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError

from gateway.core.settings import CONFIG_ENV, Settings

ENV_PREFIX = "PACS_GATEWAY_"


class CliError(Exception):
    """An error already worded for the person at the terminal."""


class SentenceTyper(typer.Typer):
    """A Typer app whose uncaught errors print one sentence (a traceback with `--debug`)."""

    debug = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit:
            raise
        except Exception as exc:
            if SentenceTyper.debug or "--debug" in sys.argv[1:]:
                raise
            fail(sentence(exc))


def fail(text: str, exit_code: int = 1) -> NoReturn:
    print(text, file=sys.stderr, flush=True)
    raise SystemExit(exit_code)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sentence(exc: BaseException) -> str:
    """One sentence for any error; our own errors are sentences already."""
    if isinstance(exc, CliError | LookupError | ValueError | FileNotFoundError):
        text = str(exc).strip() or type(exc).__name__
        return text if text.endswith((".", "?", "!")) else text + "."
    if isinstance(exc, OSError) and exc.strerror:
        return f"The operating system refused: {exc.strerror}. Run again with --debug for details."
    return (
        f"pacs-gateway stopped on an unexpected error ({type(exc).__name__}); this is a bug, "
        "and retrying will not help. Run again with --debug to see where, and report it."
    )


def load_settings(config: Path | None) -> Settings:
    """Settings from the environment and the TOML file, or CliError with one sentence.

    `config` (the --config option) wins over $PACS_GATEWAY_CONFIG. Unknown PACS_GATEWAY_*
    variables are warned about on stderr first.
    """
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    for warning in unknown_environment(Settings, known=(CONFIG_ENV,)):
        warn(warning)
    config_file = os.environ.get(CONFIG_ENV)
    if config_file:
        check_toml(Path(config_file))
    try:
        return Settings()
    except ValidationError as exc:
        raise settings_error(exc, Settings, config_file) from None


def check_toml(path: Path) -> None:
    """Raise CliError with what to do when `path` cannot be read as a TOML file."""
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except FileNotFoundError:
        raise CliError(f"The configuration file {path} does not exist.") from None
    except IsADirectoryError:
        raise CliError(
            f"The configuration file {path} is a folder; name the TOML file itself."
        ) from None
    except PermissionError:
        raise CliError(
            f"The configuration file {path} cannot be read: permission denied for the "
            "service's account."
        ) from None
    except UnicodeDecodeError:
        raise CliError(
            f"The configuration file {path} is not UTF-8 text; save it as UTF-8."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"The configuration file {path} is not valid TOML: {exc}.") from None
    except OSError as exc:
        raise CliError(f"The configuration file {path} could not be read: {exc}.") from None


def settings_error(
    exc: ValidationError, model: type[BaseModel], config_file: str | None
) -> CliError:
    """The first problem of a settings ValidationError as one sentence."""
    # An unknown key first: a typo ("ae_titel") also makes the real key look missing.
    errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    error = errors[0]
    loc = [str(part) for part in error.get("loc", ())]
    key = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".") or "(all)"
    where = _where(loc, config_file)
    if error.get("type") == "extra_forbidden":
        hint = _did_you_mean(loc, model)
        text = f"In {where}, the setting {key} is not one the gateway knows{hint}."
    elif error.get("type") == "missing":
        text = f"In {where}, the setting {key} is required but not given."
    else:
        message = str(error.get("msg", "is not valid")).rstrip(".")
        message = message[:1].lower() + message[1:]
        text = f"In {where}, the setting {key} is not valid: {message}."
    more = len(errors) - 1
    if more:
        text += f" ({more} more {'problem' if more == 1 else 'problems'} after this one.)"
    return CliError(text)


def unknown_environment(
    model: type[BaseModel], environ: Mapping[str, str] | None = None, known: tuple[str, ...] = ()
) -> list[str]:
    """A warning sentence for each PACS_GATEWAY_* variable that is no setting."""
    environ = os.environ if environ is None else environ
    fields = {name.upper() for name in model.model_fields}
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable in known:
            continue
        name = variable.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if name in fields:
            continue
        close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.75)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else "."
        warnings.append(
            f"Warning: the environment variable {variable} is no setting and is ignored{hint}"
        )
    return warnings


def _where(loc: list[str], config_file: str | None) -> str:
    if loc:
        variable = ENV_PREFIX + loc[0].upper()
        if variable in os.environ:
            return f"the environment variable {variable}"
    return f"the configuration file {config_file}" if config_file else "the settings"


def _did_you_mean(loc: list[str], model: type[BaseModel]) -> str:
    """'; did you mean dicom_port?' for a near-miss key, following nested models."""
    current: Any = model
    for part in loc[:-1]:
        if part.isdigit():
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return ""
        current = _model_of(field.annotation)
        if current is None:
            return ""
    names = list(getattr(current, "model_fields", {}))
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6) if loc else []
    return f" (did you mean {close[0]}?)" if close else ""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
