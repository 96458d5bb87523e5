"""Finding, parsing and validating heliod.toml: every problem reported at once."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from heliod.daemon.config.crossref import check_references
from heliod.daemon.config.errors import ConfigError, Loc, document_order, lines, problems_from
from heliod.daemon.config.model import SECRETS, Config

DEFAULT_PATH = Path("/etc/heliod/heliod.toml")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def config_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The file to read: `path` (-c), else $HELIOD_CONFIG, else /etc/heliod/heliod.toml."""
    chosen = path if path is not None and str(path) else env.get("HELIOD_CONFIG") or DEFAULT_PATH
    return Path(chosen).absolute()


def _syntax_error(path: Path, error: tomllib.TOMLDecodeError) -> str:
    message = str(error)
    position = _TOML_POSITION.search(message)
    if position is None:  # e.g. "(at end of document)"
        return f"{path}: invalid TOML: {message}"
    line, column = position.groups()
    return f"{path}: line {line}, column {column}: invalid TOML: {message[: position.start()]}"


def validate_config(
    data: Mapping[str, Any], path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> Config:
    """Validate an already-parsed file as if it were read from `path`; raises ConfigError."""
    env = os.environ if env is None else env
    file = Path(path).absolute()
    context = {"base_dir": file.parent, "env": env}
    problems: list[tuple[Loc, str]] = []
    config = None
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as e:
        problems.extend(problems_from(e))
    problems.extend(check_references(data))
    if problems or config is None:
        problems.sort(key=lambda problem: document_order(data, problem[0]))
        raise ConfigError(lines(problems))
    variables = {v: env[v] for _, _, v in SECRETS.values() if v in env}
    config.bind(file, variables)
    return config


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read, parse (TOML floats as exact Decimals) and validate the configuration file."""
    env = os.environ if env is None else env
    file = config_path(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        hint = ""
        if (
            not str(path or "")
            and not env.get("HELIOD_CONFIG")
            and isinstance(e, FileNotFoundError)
        ):
            hint = " (give the configuration file with -c PATH or $HELIOD_CONFIG)"
        raise ConfigError([f"{file}: cannot read: {e.strerror or e}{hint}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{file}: not UTF-8 text"]) from None
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_syntax_error(file, e)]) from None
    except ValueError:  # tomllib's int() of an integer longer than 4,300 digits
        raise ConfigError([f"{file}: invalid TOML: an integer with thousands of digits"]) from None
    except RecursionError:
        raise ConfigError([f"{file}: invalid TOML: arrays or tables nested too deeply"]) from None
    return validate_config(data, file, env)
