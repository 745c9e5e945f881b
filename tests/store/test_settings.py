"""Typed, validated settings."""

from __future__ import annotations

import pytest

from p2pmsg.errors import ConfigError
from p2pmsg.store import Settings, Store


def test_defaults_then_updates(store: Store) -> None:
    assert store.load_settings() == Settings()
    updated = store.update_settings(
        key_rotation_interval=600,
        preferred_suite="chacha20-poly1305",
        downloads_dir="/home/me/Downloads",
        default_disappearing_ttl=3600,
        accepted_extensions=[".TXT", "pdf"],
        theme="nord",
        bell=False,
    )
    assert updated.bell is False
    assert updated.theme == "nord"
    assert updated.key_rotation_interval == 600.0
    assert isinstance(updated.key_rotation_interval, float)
    assert updated.accepted_extensions == ("txt", "pdf")
    assert store.load_settings() == updated
    assert store.reset_setting("downloads_dir").downloads_dir is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_messages_per_key", 0),
        ("theme", ""),
        ("bell", "yes"),
        ("max_messages_per_key", 1.5),
        ("max_messages_per_key", True),
        ("key_rotation_interval", -1),
        ("key_rotation_interval", "60"),
        ("preferred_suite", ""),
        ("accepted_extensions", "txt"),
        ("no_such_setting", 1),
    ],
)
def test_bad_values_are_refused_and_nothing_is_written(
    store: Store, name: str, value: object
) -> None:
    with pytest.raises(ConfigError):
        store.update_settings(max_file_size=5, **{name: value})
    assert store.load_settings() == Settings()  # all or nothing
