"""Profile settings: a typed, validated snapshot over a key/value table.

Only names declared in `Settings` can be stored, each value is checked
before it is written (a bad value is a `ConfigError`, never a row that breaks
the next start), and missing keys read as the defaults, so adding a setting
needs no migration. Values are stored as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pmsg.errors import ConfigError, StoreCorruptError
from p2pmsg.store.base import StoreBase


@dataclass(frozen=True, slots=True)
class Settings:
    key_rotation_interval: float = 3600.0  # seconds under one epoch key
    max_messages_per_key: int = 1000  # messages under one epoch key
    preferred_suite: str = "aes-256-gcm"
    downloads_dir: str | None = None  # None: the per-user downloads folder
    default_disappearing_ttl: float | None = None  # seconds; None: messages stay
    max_file_size: int = 4 * 1024**3
    accepted_extensions: tuple[str, ...] | None = None  # None: any file type
    theme: str | None = None  # the app's colour theme (chosen in the palette); None: default
    bell: bool = True  # the app rings the terminal bell for a message in another conversation


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"expected a positive number, got {value!r}")
    return float(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"expected a positive whole number, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"expected a non-empty text, got {value!r}")
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _extensions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"expected a list of extensions, got {value!r}")
    return tuple(_text(v).lower().lstrip(".") for v in value)


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "key_rotation_interval": _positive_number,
    "max_messages_per_key": _positive_int,
    "preferred_suite": _text,
    "downloads_dir": _optional(_text),
    "default_disappearing_ttl": _optional(_positive_number),
    "max_file_size": _positive_int,
    "accepted_extensions": _optional(_extensions),
    "theme": _optional(_text),
    "bell": _bool,
}
assert set(_VALIDATORS) == {f.name for f in dataclasses.fields(Settings)}


def validate_setting(name: str, value: Any) -> Any:
    """The value as it will be stored, or `ConfigError` naming the setting."""
    check = _VALIDATORS.get(name)
    if check is None:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(_VALIDATORS))}")
    try:
        return check(value)
    except ConfigError as exc:
        raise ConfigError(f"setting {name}: {exc}") from None


class SettingsMixin(StoreBase):
    def load_settings(self) -> Settings:
        """The current settings, defaults for anything never set."""
        with self._read() as conn:
            rows = conn.execute("SELECT key, value FROM settings").fetchall()
        values: dict[str, Any] = {}
        for name, raw in rows:
            if name not in _VALIDATORS:
                continue  # written by a newer p2pmsg; not ours to interpret
            try:
                values[name] = validate_setting(name, json.loads(raw))
            except (ValueError, ConfigError) as exc:
                raise StoreCorruptError(f"stored setting {name} is invalid: {exc}") from None
        return Settings(**values)

    def update_settings(self, **values: Any) -> Settings:
        """Validate and store several settings at once (all or nothing)."""
        checked = {name: validate_setting(name, value) for name, value in values.items()}
        with self._write() as conn:
            for name, value in checked.items():
                stored = list(value) if isinstance(value, tuple) else value
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = excluded.value",
                    (name, json.dumps(stored)),
                )
        return self.load_settings()

    def reset_setting(self, name: str) -> Settings:
        """Back to the default."""
        validate_setting(name, getattr(Settings(), name))
        with self._write() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (name,))
        return self.load_settings()
