"""`bond alerts test|send|list`: check a webhook, deliver now, see what was sent."""

from __future__ import annotations

import orjson

from bond.config import Config
from bond.errors import ConfigError
from bond.storage.sqlite import connect
from engine.alerts import compose, outbox
from engine.alerts.message import one_line
from engine.alerts.rules import compile_rules
from engine.alerts.sender import Reply, Sender, post
from engine.privacy.lock import WorkerLock

# `bond alerts list` prints one line per alert; the whole summary is in `--json`.
SUMMARY_MAX = 120


def _check_rules(config: Config) -> None:
    # The worker refuses a rule it cannot read; every alerts command says so too, rather than
    # report all is well for a configuration the worker will not start with.
    compile_rules(config.alerts.rules)


def _webhook_url(config: Config) -> str:
    if config.alerts.webhook_url is None:
        raise ConfigError("no Discord webhook: set BOND_DISCORD_WEBHOOK_URL or alerts.webhook_url")
    return config.alerts.webhook_url


def test_webhook(config: Config) -> int:
    """Send one sample message; say plainly whether Discord took it."""
    _check_rules(config)
    url, timeout_s = _webhook_url(config), config.alerts.timeout_s
    reply = post(url, compose.sample().payload(), timeout_s=timeout_s)
    if reply.status is not None and 200 <= reply.status < 300:
        print("Discord accepted the test message: the webhook works.")
        return 0
    print(f"The test message was not delivered: {_why(reply)}.")
    return 1


def _why(reply: Reply) -> str:
    if reply.status == 429 and reply.retry_after_s is not None:
        return f"{reply.reason}; Discord asks to wait {reply.retry_after_s:g} s before trying again"
    return reply.reason


def send_pending(config: Config, *, retry_failed: bool) -> int:
    """Deliver the pending alerts due now (and failed ones again, if asked).

    A running worker's sender delivers them itself: a second sender beside it would take the
    same rows and send each alert twice, so then the failed ones are only made pending.
    """
    _check_rules(config)
    url = _webhook_url(config)
    lock = WorkerLock(config.data_dir)
    worker_running = not lock.acquire()
    conn = connect(config.state_db, durable=False)
    try:
        outbox.migrate_outbox(conn)
        if retry_failed:
            print(f"{outbox.retry_failed(conn)} failed alert(s) made pending again.")
        if worker_running:
            print("A bond worker is running on this data directory: its sender delivers them.")
            return 0
        sender = Sender(conn, url, timeout_s=config.alerts.timeout_s)
        tried = sender.send_due()
        left = "none" if outbox.next_wake(conn) is None else "some (retried later)"
        print(f"{tried} delivery attempt(s); {left} still pending.")
    finally:
        conn.close()
        lock.release()
    return 0


def list_alerts(config: Config, *, limit: int, as_json: bool) -> int:
    _check_rules(config)
    conn = connect(config.state_db, durable=False)
    try:
        alerts = [a.public() for a in outbox.recent(conn, limit)]
    finally:
        conn.close()
    if as_json:
        print(orjson.dumps({"alerts": alerts}).decode())
        return 0
    if not alerts:
        print("No alerts yet: none of the rules has matched anyone.")
    for alert in alerts:
        error = f"  ({one_line(alert['last_error'], SUMMARY_MAX)})" if alert["last_error"] else ""
        summary = one_line(alert["summary"], SUMMARY_MAX)
        print(f"#{alert['id']}  {alert['state']:<7}  {alert['rule']}: {summary}{error}")
    return 0
