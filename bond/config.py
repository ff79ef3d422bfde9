"""Configuration: defaults that work with no file, then `bond.toml`, then `BOND_*` variables.

Unknown keys are errors, not silently ignored: a typo in `bond.toml` should fail loudly at start
rather than leave a limit at its default.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from bond.errors import ConfigError

IpPolicy = Literal["keep", "truncate", "drop"]
IP_POLICIES: tuple[IpPolicy, ...] = ("keep", "truncate", "drop")
AlertKind = Literal["identified", "returned", "event"]
T = TypeVar("T")

# The write key of the embedded default source. It ships in every browser that loads the
# snippet, so it is an identifier rather than a secret; production sets its own.
DEFAULT_WRITE_KEY = "bond-demo-write-key"


@dataclass(frozen=True)
class Source:
    """One site or app sending events, known by its write key."""

    name: str
    write_key: str = field(repr=False)
    origins: tuple[str, ...] = ("*",)
    require_signed_identify: bool = False
    signing_secret: str | None = field(default=None, repr=False)

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


@dataclass(frozen=True)
class CollectorConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    ip: IpPolicy = "truncate"
    max_event_bytes: int = 32 * 1024
    max_body_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    # max_body_bytes counts bytes on the wire; a gzip body may inflate to this much. Past it
    # the request is answered 413 having cost at most this much memory.
    max_decompressed_bytes: int = 1024 * 1024
    # Events waiting for the writer; past this the collector answers 503 instead of growing.
    queue_max_events: int = 100_000
    # Timestamps further ahead than this (after clock-skew correction) are clamped to receipt.
    future_tolerance_ms: int = 10 * 60 * 1000
    # A client clock within this of ours (sentAt vs receipt) is trusted as it is: correcting it
    # would only add transit time, which reorders a browser's events sent in different requests.
    skew_tolerance_ms: int = 2000


@dataclass(frozen=True)
class EngineConfig:
    # One noisy id (a shared test account, a bot) must not collapse everyone into one person.
    max_user_ids_per_person: int = 5
    batch_size: int = 2000
    # Raw events older than this many days leave the event log once applied; 0 keeps them.
    retention_days: int = 0


@dataclass(frozen=True)
class AlertRule:
    """One `[[alerts.rules]]` entry; `engine.alerts.rules` compiles and evaluates it."""

    name: str
    kind: AlertKind
    # identified: the cart, order or lifetime value that makes a newly identified person worth it.
    threshold: float = 0.0
    # returned: who is watched (any of these), and how long away makes a visit a return.
    emails: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    min_lifetime_value: float | None = None
    away_s: int = 7 * 24 * 3600
    # event: the event name, and conditions on its properties such as "value >= 500".
    event: str | None = None
    where: tuple[str, ...] = ()
    # One browsing spree is one alert: the rule stays quiet for this person this long after firing.
    cooldown_s: int = 3600
    require_verified: bool = False
    # The ISO 4217 code the rule's amounts are in (its own, else `[alerts] currency`). None: each
    # currency on its own, never added together.
    currency: str | None = None


@dataclass(frozen=True)
class AlertsConfig:
    webhook_url: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    # The currency of every rule that does not name its own.
    currency: str | None = None
    rules: tuple[AlertRule, ...] = ()


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("bond-data")
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sources: tuple[Source, ...] = (Source(name="default", write_key=DEFAULT_WRITE_KEY),)
    admin_token: str | None = field(default=None, repr=False)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    @property
    def events_db(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.db"

    def source_for_key(self, write_key: str) -> Source | None:
        for source in self.sources:
            if source.write_key == write_key:
                return source
        return None


# Fields kept out of repr hold secrets, which type errors must not repeat either.
_SECRET_FIELDS = frozenset(
    f.name
    for section in (Config, CollectorConfig, EngineConfig, Source, AlertsConfig, AlertRule)
    for f in fields(section)
    if not f.repr
)
# Types as a bond.toml author knows them.
_TOML_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Build the configuration: defaults, then the TOML file, then the environment, then flags."""
    env = dict(os.environ) if env is None else env
    config_path = _config_path(path, env)
    raw: dict[str, Any] = {}
    if config_path is not None:
        try:
            raw = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from exc
    config = _from_toml(raw, where=str(config_path or "defaults"))
    config = _apply_env(config, env)
    if data_dir is not None:
        config = replace(config, data_dir=Path(data_dir))
    _check(config)
    return config


def _config_path(path: str | os.PathLike[str] | None, env: dict[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("BOND_CONFIG"):
        return Path(env["BOND_CONFIG"])
    default = Path("bond.toml")
    return default if default.is_file() else None


def _from_toml(raw: dict[str, Any], *, where: str) -> Config:
    _reject_unknown(
        raw, {"data_dir", "admin_token", "collector", "engine", "sources", "alerts"}, where
    )
    config = Config()
    if "data_dir" in raw:
        config = replace(config, data_dir=Path(_typed(raw["data_dir"], str, "data_dir")))
    if "admin_token" in raw:
        config = replace(config, admin_token=_typed(raw["admin_token"], str, "admin_token"))
    if "collector" in raw:
        collector = _section(CollectorConfig, "collector", raw["collector"], where)
        config = replace(config, collector=collector)
    if "engine" in raw:
        config = replace(config, engine=_section(EngineConfig, "engine", raw["engine"], where))
    if "sources" in raw:
        if not isinstance(raw["sources"], list):
            raise ConfigError(f"{where}: sources must be [[sources]] tables, one per site or app")
        config = replace(config, sources=tuple(_source(s, where) for s in raw["sources"]))
    if "alerts" in raw:
        config = replace(config, alerts=_alerts(raw["alerts"], where))
    return config


def _section(cls: type[T], section: str, raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{section}] must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    _reject_unknown(raw, set(known), where)
    defaults = cls()
    values = {
        name: _typed(raw[name], type(getattr(defaults, name)), f"{section}.{name}") for name in raw
    }
    return replace(defaults, **values)  # type: ignore[type-var]


def _source(raw: Any, where: str) -> Source:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[sources]] entry must be a table")
    _reject_unknown(
        raw,
        {"name", "write_key", "origins", "require_signed_identify", "signing_secret"},
        where,
    )
    for required in ("name", "write_key"):
        if required not in raw:
            raise ConfigError(f"{where}: a [[sources]] entry lacks '{required}'")
    origins = raw.get("origins", ["*"])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError(f"{where}: sources.origins must be a list of strings")
    return Source(
        name=_typed(raw["name"], str, "sources.name"),
        write_key=_typed(raw["write_key"], str, "sources.write_key"),
        origins=tuple(o.rstrip("/") for o in origins),
        require_signed_identify=_typed(
            raw.get("require_signed_identify", False), bool, "sources.require_signed_identify"
        ),
        signing_secret=_typed(
            raw.get("signing_secret"), (str, type(None)), "sources.signing_secret"
        ),
    )


def _alerts(raw: Any, where: str) -> AlertsConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [alerts] must be a table")
    _reject_unknown(raw, {"webhook_url", "timeout_s", "currency", "rules"}, where)
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError(f"{where}: alerts.rules must be a list of [[alerts.rules]] tables")
    currency = _currency(raw.get("currency"), "alerts.currency")
    return AlertsConfig(
        webhook_url=_typed(raw.get("webhook_url"), (str, type(None)), "alerts.webhook_url"),
        timeout_s=float(_typed(raw.get("timeout_s", 10.0), (int, float), "alerts.timeout_s")),
        currency=currency,
        rules=tuple(_alert_rule(r, where, currency) for r in rules),
    )


# An ISO 4217 code: three letters. Written in any case, kept in upper case as orders are read.
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def _currency(value: Any, setting: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ConfigError(
            f"{setting} must be a three-letter ISO 4217 currency code such as "
            f'"EUR" or "USD", not {value!r}'
        )
    return value.upper()


def _alert_rule(raw: Any, where: str, currency: str | None) -> AlertRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[alerts.rules]] entry must be a table")
    _reject_unknown(raw, {f.name for f in fields(AlertRule)}, where)
    for required in ("name", "kind"):
        if required not in raw:
            raise ConfigError(f"{where}: an [[alerts.rules]] entry lacks '{required}'")
    name = _typed(raw["name"], str, "alerts.rules.name")
    if raw["kind"] not in ("identified", "returned", "event"):
        raise ConfigError(f"alert rule {name!r}: kind must be identified, returned or event")
    lifetime = raw.get("min_lifetime_value")
    return AlertRule(
        name=name,
        kind=raw["kind"],
        threshold=float(_typed(raw.get("threshold", 0.0), (int, float), "alerts.rules.threshold")),
        emails=tuple(e.strip().lower() for e in _strings(raw.get("emails", []), "emails")),
        domains=tuple(
            d.strip().lower().lstrip("@") for d in _strings(raw.get("domains", []), "domains")
        ),
        min_lifetime_value=None
        if lifetime is None
        else float(_typed(lifetime, (int, float), "alerts.rules.min_lifetime_value")),
        away_s=_typed(raw.get("away_s", AlertRule.away_s), int, "alerts.rules.away_s"),
        event=_typed(raw.get("event"), (str, type(None)), "alerts.rules.event"),
        where=tuple(_strings(raw.get("where", []), "where")),
        cooldown_s=_typed(
            raw.get("cooldown_s", AlertRule.cooldown_s), int, "alerts.rules.cooldown_s"
        ),
        require_verified=_typed(
            raw.get("require_verified", False), bool, "alerts.rules.require_verified"
        ),
        currency=_currency(raw.get("currency"), f"alert rule {name!r}: currency") or currency,
    )


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"alerts.rules.{name} must be a list of strings")
    return value


# Set but empty, these would quietly leave the default in place: the demo write key, which
# everyone knows, or a webhook the operator meant to switch off.
_NOT_EMPTY = (
    "BOND_WRITE_KEY",
    "BOND_ADMIN_TOKEN",
    "BOND_SIGNING_SECRET",
    "BOND_DISCORD_WEBHOOK_URL",
)


def _apply_env(config: Config, env: dict[str, str]) -> Config:
    for name in _NOT_EMPTY:
        if name in env and not env[name].strip():
            raise ConfigError(f"{name} is set but empty: give it a value or unset it")
    if env.get("BOND_DATA_DIR"):
        config = replace(config, data_dir=Path(env["BOND_DATA_DIR"]))
    if env.get("BOND_ADMIN_TOKEN"):
        config = replace(config, admin_token=env["BOND_ADMIN_TOKEN"])
    if env.get("BOND_WRITE_KEY"):
        first, *rest = config.sources
        config = replace(config, sources=(replace(first, write_key=env["BOND_WRITE_KEY"]), *rest))
    if env.get("BOND_ALLOWED_ORIGINS"):
        origins = tuple(o.strip().rstrip("/") for o in env["BOND_ALLOWED_ORIGINS"].split(","))
        _check_origins(origins, "BOND_ALLOWED_ORIGINS")
        first, *rest = config.sources
        config = replace(config, sources=(replace(first, origins=origins), *rest))
    if env.get("BOND_SIGNING_SECRET"):
        first, *rest = config.sources
        signed = replace(first, signing_secret=env["BOND_SIGNING_SECRET"])
        config = replace(config, sources=(signed, *rest))
    if env.get("BOND_REQUIRE_SIGNED_IDENTIFY"):
        first, *rest = config.sources
        required = _env_bool(env["BOND_REQUIRE_SIGNED_IDENTIFY"], "BOND_REQUIRE_SIGNED_IDENTIFY")
        config = replace(config, sources=(replace(first, require_signed_identify=required), *rest))
    if env.get("BOND_DISCORD_WEBHOOK_URL"):
        url = env["BOND_DISCORD_WEBHOOK_URL"]
        if not _is_http_url(url):
            raise ConfigError(
                "BOND_DISCORD_WEBHOOK_URL (alerts.webhook_url) must be an http(s) URL"
            )
        alerts = replace(config.alerts, webhook_url=url)
        config = replace(config, alerts=alerts)
    if env.get("BOND_RETENTION_DAYS"):
        days = env["BOND_RETENTION_DAYS"]
        if not (days.strip().isascii() and days.strip().isdigit()):
            raise ConfigError(f"BOND_RETENTION_DAYS must be a whole number of days, not {days!r}")
        config = replace(config, engine=replace(config.engine, retention_days=int(days)))
    return _apply_collector_env(config, env)


def _apply_collector_env(config: Config, env: dict[str, str]) -> Config:
    collector = config.collector
    if "BOND_COLLECTOR_HOST" in env:
        host = env["BOND_COLLECTOR_HOST"].strip()
        if not host:
            raise ConfigError("BOND_COLLECTOR_HOST is set but empty: give it a value or unset it")
        collector = replace(collector, host=host)
    if env.get("BOND_COLLECTOR_PORT"):
        port = _env_port(env["BOND_COLLECTOR_PORT"], "BOND_COLLECTOR_PORT")
        collector = replace(collector, port=port)
    if env.get("BOND_IP"):
        ip = env["BOND_IP"].strip()
        if ip not in IP_POLICIES:
            raise ConfigError(
                f"BOND_IP (collector.ip) must be keep, truncate or drop, not {env['BOND_IP']!r}"
            )
        collector = replace(collector, ip=ip)
    return replace(config, collector=collector)


def _env_port(value: str, name: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ConfigError(f"{name} (collector.port) must be from 1 to 65535, not {value!r}")
    return int(text)


def _env_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _check(config: Config) -> None:
    if config.admin_token is not None and not config.admin_token.strip():
        raise ConfigError("admin_token is empty: give it a value or leave it out")
    _check_sources(config.sources)
    _check_collector(config.collector)
    _check_engine(config.engine)
    _check_alerts(config.alerts)


def _check_sources(sources: tuple[Source, ...]) -> None:
    if not sources:
        raise ConfigError("at least one source is needed")
    keys = [s.write_key for s in sources]
    if len(set(keys)) != len(keys):
        raise ConfigError("two sources share a write key; each source needs its own")
    # Events are stored, counted and deduplicated under the source's name.
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("two sources share a name; each source needs its own")
    for source in sources:
        # Empty, a write key matches no request and a secret signs with no key at all.
        for setting in ("name", "write_key", "signing_secret"):
            value = getattr(source, setting)
            if value is not None and not value.strip():
                raise ConfigError(f"sources.{setting} is empty: give it a value or leave it out")
        _check_origins(source.origins, f"source {source.name!r}: sources.origins")
        if source.require_signed_identify and not source.signing_secret:
            raise ConfigError(
                f"source {source.name!r} requires signed identifies but has no signing_secret "
                "(BOND_SIGNING_SECRET sets the first source's)"
            )


# What browsers send as Origin: a scheme, a host and maybe a port, never a path.
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")


def _check_origins(origins: tuple[str, ...], setting: str) -> None:
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{setting}: {origin!r} is not an origin; write it as browsers send it, "
                "such as 'https://shop.example' (scheme, host, port if any, no path), "
                "or '*' for any"
            )


# Limits of zero or below refuse every request (a queue of 0 answers every event 503).
_AT_LEAST_ONE = (
    "max_event_bytes",
    "max_body_bytes",
    "max_batch_events",
    "max_decompressed_bytes",
    "queue_max_events",
)


def _check_collector(collector: CollectorConfig) -> None:
    if not collector.host.strip():
        raise ConfigError("collector.host is empty (0.0.0.0 listens on every IPv4 interface)")
    if collector.ip not in IP_POLICIES:
        raise ConfigError(f"collector.ip must be keep, truncate or drop, not {collector.ip!r}")
    if not 0 < collector.port < 65536:
        raise ConfigError(f"collector.port must be from 1 to 65535, not {collector.port}")
    for name in _AT_LEAST_ONE:
        if getattr(collector, name) < 1:
            raise ConfigError(
                f"collector.{name} must be at least 1, not {getattr(collector, name)}"
            )
    for name in ("future_tolerance_ms", "skew_tolerance_ms"):
        if getattr(collector, name) < 0:
            raise ConfigError(
                f"collector.{name} cannot be negative, not {getattr(collector, name)}"
            )
    if collector.max_event_bytes > collector.max_body_bytes:
        raise ConfigError("collector.max_event_bytes cannot exceed collector.max_body_bytes")


def _check_engine(engine: EngineConfig) -> None:
    if engine.retention_days < 0:
        raise ConfigError("engine.retention_days cannot be negative (0 keeps raw events)")
    for name in ("batch_size", "max_user_ids_per_person"):
        if getattr(engine, name) < 1:
            raise ConfigError(f"engine.{name} must be at least 1, not {getattr(engine, name)}")


def _check_alerts(alerts: AlertsConfig) -> None:
    # The URL is a secret: say what is wrong with it without repeating it.
    if alerts.webhook_url is not None and not _is_http_url(alerts.webhook_url):
        raise ConfigError("alerts.webhook_url must be an http(s) URL")
    if not alerts.timeout_s > 0:
        raise ConfigError(f"alerts.timeout_s must be above 0 seconds, not {alerts.timeout_s}")
    names = [rule.name for rule in alerts.rules]
    if len(set(names)) != len(names):
        raise ConfigError("two alert rules share a name; the name keys each rule's cooldown")
    for rule in alerts.rules:
        if rule.kind == "event" and not rule.event:
            raise ConfigError(f"alert rule {rule.name!r} (kind event) needs 'event'")
        watches = rule.emails or rule.domains or rule.min_lifetime_value is not None
        if rule.kind == "returned" and not watches:
            raise ConfigError(
                f"alert rule {rule.name!r} (kind returned) needs emails, domains or "
                "min_lifetime_value"
            )
        if rule.cooldown_s < 0 or rule.away_s < 0:
            raise ConfigError(f"alert rule {rule.name!r}: cooldown_s and away_s cannot be negative")


def _is_http_url(url: str) -> bool:
    scheme, _, rest = url.partition("://")
    return scheme in ("http", "https") and bool(rest.strip())


def _reject_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _typed(value: Any, expected: type[T] | tuple[type, ...], name: str) -> T:
    names = expected if isinstance(expected, tuple) else (expected,)
    # bool is an int in Python; a limit set to `true` is a mistake worth reporting.
    if isinstance(value, expected) and not (int in names and isinstance(value, bool)):
        return value  # type: ignore[return-value]
    # TOML has no null: a setting that may be None is one that may be left out.
    wanted = " or ".join(_toml_name(t) for t in names if t is not type(None))
    # A secret in the message would reach the logs; its type is enough to spot the mistake.
    secret = name.rpartition(".")[2] in _SECRET_FIELDS
    raise ConfigError(
        f"{name} must be {wanted}, not {_toml_name(type(value)) if secret else repr(value)}"
    )


def _toml_name(kind: type) -> str:
    return _TOML_NAMES.get(kind, kind.__name__)
