from __future__ import annotations

from pathlib import Path

import pytest

from bond.config import DEFAULT_WRITE_KEY, load
from bond.errors import ConfigError


def test_defaults_work_with_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load(env={})
    assert config.data_dir == Path("bond-data")
    assert config.sources[0].write_key == DEFAULT_WRITE_KEY
    assert config.collector.max_event_bytes == 32 * 1024
    assert config.collector.max_body_bytes == 500 * 1024
    assert config.collector.max_batch_events == 2500
    assert config.collector.ip == "truncate"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "bond.toml"
    path.write_text(
        'data_dir = "from-file"\n[collector]\nport = 9000\nmax_batch_events = 10\n'
        '[[sources]]\nname = "shop"\nwrite_key = "file-key"\norigins = ["https://shop.example/"]\n'
    )
    config = load(path, env={"BOND_WRITE_KEY": "env-key", "BOND_DATA_DIR": "from-env"})
    assert config.collector.port == 9000
    assert config.collector.max_batch_events == 10
    assert config.sources[0].name == "shop"
    assert config.sources[0].write_key == "env-key"
    assert config.sources[0].origins == ("https://shop.example",)
    assert config.data_dir == Path("from-env")
    assert load(path, env={}, data_dir="flag").data_dir == Path("flag")


def test_bond_config_variable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[collector]\nport = 9100\n")
    assert load(env={"BOND_CONFIG": str(path)}).collector.port == 9100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[collector]\nmax_batch_event = 5\n", "unknown setting(s) max_batch_event"),
        ("[collector]\nport = true\n", "port must be an integer"),
        ('[collector]\nport = "eighty"\n', "port must be an integer, not 'eighty'"),
        ('[collector]\nip = "hash"\n', "keep, truncate or drop"),
        ("colector = 1\n", "unknown setting(s) colector"),
        ('[[sources]]\nname = "a"\n', "lacks 'write_key'"),
        (
            '[[sources]]\nname = "a"\nwrite_key = "k"\n[[sources]]\nname = "b"\nwrite_key = "k"\n',
            "share a write key",
        ),
        (
            '[[sources]]\nname = "a"\nwrite_key = "k"\nrequire_signed_identify = true\n',
            "no signing_secret",
        ),
        ("not toml = = 1", "cannot read config file"),
        ("[collector]\nport = 70000\n", "collector.port must be from 1 to 65535, not 70000"),
        ("[alerts]\ntimeout_s = 0\n", "alerts.timeout_s must be above 0 seconds"),
        # Accepted before: a queue of 0 answered every event 503 while /healthz said ok.
        ("[collector]\nqueue_max_events = 0\n", "collector.queue_max_events must be at least 1"),
        ("[collector]\nmax_batch_events = -1\n", "collector.max_batch_events must be at least 1"),
        ("[collector]\nskew_tolerance_ms = -1\n", "collector.skew_tolerance_ms cannot be negative"),
        ("[engine]\nbatch_size = 0\n", "engine.batch_size must be at least 1"),
        ("[collector]\nport = 8000.5\n", "collector.port must be an integer"),
        ("collector = 5\n", r"\[collector\] must be a table"),
        ("sources = 5\n", "sources must be \\[\\[sources\\]\\] tables"),
        ('admin_token = ""\n', "admin_token is empty"),
        ('[[sources]]\nname = "a"\nwrite_key = ""\n', "sources.write_key is empty"),
        (
            '[[sources]]\nname = "a"\nwrite_key = "k"\n[[sources]]\nname = "a"\nwrite_key = "j"\n',
            "two sources share a name",
        ),
        (
            '[[sources]]\nname = "a"\nwrite_key = "k"\norigins = ["shop.example"]\n',
            "'shop.example' is not an origin",
        ),
    ],
)
def test_mistakes_fail_loudly_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bond.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(path, env={})


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    path = tmp_path / "bond.toml"
    path.write_text(
        '[[sources]]\nname = "a"\nwrite_key = "wr1te-key-value"\nsigning_secret = "s3cr3t-value"\n'
    )
    config = load(path, env={"BOND_ADMIN_TOKEN": "t0k3n-value"})
    assert "wr1te-key-value" not in repr(config)
    assert "s3cr3t-value" not in repr(config)
    assert "t0k3n-value" not in repr(config)


@pytest.mark.parametrize(
    "text",
    [
        '[[sources]]\nname = "s"\nwrite_key = 987654321\n',
        "admin_token = 987654321\n",
        '[[sources]]\nname = "s"\nwrite_key = "k"\nsigning_secret = 987654321\n',
        "[alerts]\nwebhook_url = 987654321\n",
    ],
)
def test_a_mistyped_secret_is_named_without_its_value(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bond.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="must be a string, not an integer") as raised:
        load(path, env={})
    assert "987654321" not in str(raised.value)


@pytest.mark.parametrize("name", ["BOND_WRITE_KEY", "BOND_ADMIN_TOKEN", "BOND_DISCORD_WEBHOOK_URL"])
def test_a_secret_set_but_empty_is_refused_not_left_at_its_default(name: str) -> None:
    # Empty, BOND_WRITE_KEY used to leave the demo key that everyone knows in place.
    with pytest.raises(ConfigError, match=f"{name} is set but empty"):
        load(None, env={name: "  "})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOND_IP": "hash"}, "BOND_IP (collector.ip) must be keep, truncate or drop"),
        (
            {"BOND_DISCORD_WEBHOOK_URL": "discord.com/api/webhooks/1/s3cret"},
            "BOND_DISCORD_WEBHOOK_URL (alerts.webhook_url) must be an http(s) URL",
        ),
        ({"BOND_ALLOWED_ORIGINS": "https://a.example,shop.example"}, "BOND_ALLOWED_ORIGINS"),
        ({"BOND_COLLECTOR_PORT": "70000"}, "BOND_COLLECTOR_PORT (collector.port)"),
    ],
)
def test_a_wrong_variable_is_named_with_the_setting_it_sets(
    env: dict[str, str], message: str
) -> None:
    # The error named only the setting: the operator looked for it in bond.toml in vain.
    with pytest.raises(ConfigError) as raised:
        load(None, env=env)
    assert message in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_the_collector_address_may_come_from_the_environment() -> None:
    # `bond demo --port` hands it to the read API this way, for the dashboard's health view.
    config = load(None, env={"BOND_COLLECTOR_HOST": "0.0.0.0", "BOND_COLLECTOR_PORT": "9123"})
    assert (config.collector.host, config.collector.port) == ("0.0.0.0", 9123)
