"""Settings of a scheduled job: cryokb.toml, then the environment, then the flags.

A refresh runs unattended (cron, a systemd timer, CI), so its settings must live
somewhere other than a shell history: a ``cryokb.toml`` in the working directory (or
the file given with ``--config`` or ``CRYOKB_CONFIG``). The environment overrides the
file, so a secret or a one-off change needs no edit; flags override both. The NCBI API
key is accepted only from the environment or the file, never from a flag (it would
show in ``ps`` and in shell histories), and it is never echoed, logged or stored: it is
kept out of ``repr`` and out of :meth:`Settings.describe`.

Relative paths in the file (``db``, ``log``) are relative to the file's folder, so a
cron job finds the same database whatever its working directory.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

log = logging.getLogger("cryokb.config")

CONFIG_NAME = "cryokb.toml"
CONFIG_ENV = "CRYOKB_CONFIG"
DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


class ConfigError(Exception):
    """A configuration file, variable or value that cannot be used (names the file or variable)."""


class FlagError(ConfigError):
    """A flag's value cannot be used: the command line's mistake (a usage error), not the settings'."""


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _url(value, where: str) -> str:
    """An E-utilities base URL that can be sent to, checked before a refresh takes its
    lock or copies the store (it failed only at its first request). Spaces around it are
    refused, not stripped: harvest's --eutils-url refuses them (base_url_problem), and
    the same NCBI_EUTILS_URL was taken by one command and refused by the other."""
    from ingest.eutils import base_url_problem

    return _checked(value, where, base_url_problem)


def _email(value, where: str) -> str:
    """A contact address NCBI can write to, checked before a refresh takes its lock (it was
    sent with every request, whatever it was). Spaces around it are refused, as harvest's
    --email refuses them, not stripped."""
    from ingest.eutils import email_problem

    return _checked(value, where, email_problem)


def _checked(value, where: str, problem_of: Callable[[str], str | None]) -> str:
    """A string, not blank, as written, or a ConfigError saying what ``problem_of`` finds
    wrong with it (the same check the command's flag makes)."""
    _text(value, where)
    problem = problem_of(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value


def _integer(low: int, high: int) -> Callable[[object, str], int]:
    def convert(value, where: str) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{where}: {value} is outside {low}..{high}")
        return value

    return convert


def _seconds(value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or number < 0:
        raise ConfigError(f"{where}: expected a number of seconds >= 0, got {value!r}")
    return number


def names_a_folder(text: str) -> bool:
    """Whether a path typed as text ends in a slash or a dot, so that it names a folder:
    as a Path it would lose them ("kb/" is "kb"), and a file would be made of the folder."""
    return os.path.basename(text) in ("", ".", "..")


def _path(value, where: str) -> Path:
    """A file's path; one that names a folder is refused (names_a_folder), and so is a
    blank one or one with spaces around it. Those spaces are a slip, not part of the name:
    stripping them published another file than the one import and stats read (they keep
    --db and CRYOKB_DB as written), and keeping them made a scheduled refresh start a new,
    empty store beside the old one, without a word."""
    if isinstance(value, Path):
        return _home_expanded(value, where)
    if _text(value, where) != value:
        raise ConfigError(f"{where}: {value!r} has spaces around it; remove them")
    if names_a_folder(value):
        raise ConfigError(f"{where}: {value!r} ends with a slash or a dot, so it names a folder: give a file")
    return _home_expanded(Path(value), where)


def _home_expanded(path: Path, where: str) -> Path:
    """``path`` with a leading ~ or ~user made a home folder; a user with none is the setting's error."""
    try:
        return path.expanduser()
    except RuntimeError:  # "Could not determine home directory."
        raise ConfigError(f"{where}: {path}: no such user's home folder") from None


@dataclass(frozen=True)
class Key:
    """One setting: how to read it, the variable that overrides the file, and its default."""

    convert: Callable[[object, str], object]
    env: str | None
    default: object = None
    doc: str = ""


KEYS: dict[str, Key] = {
    "db": Key(_path, "CRYOKB_DB", Path("cryokb.db"), "the published SQLite database"),
    "query": Key(_text, "CRYOKB_QUERY", None, "PubMed query (default: data/pubmed_query.toml)"),
    "email": Key(_email, "NCBI_EMAIL", None, "contact address sent to NCBI"),
    "api_key": Key(_text, "NCBI_API_KEY", None, "NCBI API key (environment or file only)"),
    "eutils_url": Key(_url, "NCBI_EUTILS_URL", DEFAULT_EUTILS_URL, "E-utilities base URL"),
    "batch_size": Key(_integer(1, 10_000), "CRYOKB_BATCH_SIZE", 500, "records per efetch and transaction"),
    "extract_batch_size": Key(_integer(1, 10_000), None, 200, "articles per extraction transaction"),
    "log": Key(_path, "CRYOKB_LOG", None, "log file (timestamped lines, INFO and up)"),
    "max_tries": Key(_integer(1, 20), None, 5, "tries per E-utilities request"),
    "backoff": Key(_seconds, None, 1.0, "first retry delay in seconds, doubled on each try"),
}
PATH_KEYS = ("db", "log")
SECRET_KEYS = ("api_key",)


@dataclass
class Settings:
    """The resolved settings of one run, and where each came from (for ``-v`` logs)."""

    db: Path
    query: str | None
    email: str | None
    eutils_url: str
    batch_size: int
    extract_batch_size: int
    log: Path | None
    max_tries: int
    backoff: float
    api_key: str | None = field(default=None, repr=False)
    config_file: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Each setting and its source on one line; the API key shows only as set or not."""
        parts = []
        for name in KEYS:
            value = getattr(self, name)
            shown = ("set" if value else "not set") if name in SECRET_KEYS else value
            parts.append(f"{name}={shown} ({self.sources.get(name, 'default')})")
        return ", ".join(parts)


def find_config(given: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                cwd: str | Path | None = None) -> Path | None:
    """The config file to read: the one given, else $CRYOKB_CONFIG, else ./cryokb.toml if any.

    A file that was asked for by name (flag or variable) must exist; the one in the
    working directory is optional.
    """
    env = os.environ if env is None else env
    for candidate, where in ((given, "--config"), (env.get(CONFIG_ENV), CONFIG_ENV)):
        if candidate:
            path = _home_expanded(Path(candidate), where)
            if not path.is_absolute() and cwd is not None:
                path = Path(cwd) / path
            if not path.is_file():
                raise ConfigError(f"{where}: no config file at {path}")
            return path
    local = Path(cwd or Path.cwd()) / CONFIG_NAME
    return local if local.is_file() else None


def read_config(path: Path) -> dict:
    """The file's settings, checked against the known keys; relative paths made absolute."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:  # TOML is UTF-8, and tomllib says so with a traceback
        raise ConfigError(f"{path}: not UTF-8 (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
                          "TOML files are UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)} (known: {', '.join(KEYS)})")
    values = {name: KEYS[name].convert(value, f"{path}: {name}") for name, value in data.items()}
    for name in PATH_KEYS:
        if name in values and not values[name].is_absolute():
            values[name] = path.resolve().parent / values[name]
    if any(name in values for name in SECRET_KEYS):
        _warn_if_readable_by_others(path)
    return values


def _warn_if_readable_by_others(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s holds an API key and is readable by other users: chmod 600 it", path)


def resolve_settings(flags: Mapping[str, object] | None = None, *, config: str | Path | None = None,
                     env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> Settings:
    """Merge defaults < config file < environment < flags into one Settings.

    ``flags`` holds the command-line values; None means "not given". An ``api_key``
    among the flags is refused: the key comes from the environment or the file only.
    """
    env = os.environ if env is None else env
    flags = {name: value for name, value in (flags or {}).items() if value is not None}
    unknown = sorted(set(flags) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown settings {', '.join(unknown)}")
    if any(name in flags for name in SECRET_KEYS):
        raise ConfigError("the API key is read from NCBI_API_KEY or the config file, never from a flag")
    config_file = find_config(config, env=env, cwd=cwd)
    from_file = read_config(config_file) if config_file else {}
    values, sources = {}, {}
    for name, key in KEYS.items():
        value, source = key.default, "default"
        if name in from_file:
            value, source = from_file[name], f"config {config_file}"
        if name in flags:  # a flag wins, so its variable is not read (a bad one would stop the run)
            try:
                value, source = key.convert(flags[name], f"--{name.replace('_', '-')}"), "flag"
            except ConfigError as error:
                raise FlagError(str(error)) from None
        elif key.env and env.get(key.env):
            value, source = key.convert(env[key.env], f"environment {key.env}"), f"environment {key.env}"
        if name in PATH_KEYS and value is not None and source != f"config {config_file}":
            value = _home_expanded(Path(value), source)
            if not value.is_absolute():
                value = Path(cwd or Path.cwd()) / value
        values[name], sources[name] = value, source
    return Settings(**values, config_file=config_file, sources=sources)
