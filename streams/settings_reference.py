"""docs/configuration.md, generated from `Settings` (`make configuration`): each field's variable,
default, allowed values and description, grouped by what they configure. A unit test fails when the
committed page is stale, as for the JSON Schemas.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from streams.settings import Settings

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

GROUPS: dict[str, tuple[str, ...]] = {
    "The brokers, the store and the web server": (
        "kafka_brokers",
        "web_host",
        "web_port",
        "data_dir",
        "app_id",
        "partitions",
        "replication_factor",
        "standby_replicas",
        "log_level",
        "embedded_broker_pid",
    ),
    "The rules": ("default_region", "opt_out_keywords", "opt_in_keywords", "max_ahead"),
    "Twilio": (
        "twilio_auth_token",
        "public_base_url",
        "twilio_account_sid",
        "twilio_api_url",
        "twilio_senders",
        "twilio_messaging_services",
        "twilio_timeout",
        "api_url",
    ),
    "Operator access": ("operator_token", "auth", "allowed_hosts", "operator_session_hours"),
    "Timing, batches and readiness": (
        "session_timeout",
        "rebalance_timeout",
        "send_timeout",
        "override_wait",
        "fetch_max_wait",
        "batch_bytes",
        "ready_max_lag",
        "lag_interval",
    ),
}

_HEAD = """\
# Configuration

<!-- Generated from streams/settings.py by `make configuration`: edit the fields, not this page. -->

Every setting is an environment variable with the prefix `OPTOUTS_`, read once into one frozen
pydantic-settings object, `Settings` in `streams/settings.py`, and passed from there; nothing else
reads the environment. The workers, `make run`, every `optouts` command, the guarded sender and the
tests all take the same object (the tests pass one in).

- **Lists** (`list` below) are comma-separated; blanks around each item are dropped.
- **Secrets** (`secret`) are printed as `**********` wherever settings are shown, and never logged.
- A value that does not fit (a port of 0, a region of three letters, `OPTOUTS_AUTH=maybe`) stops
  the command with one line that names the variable, never a secret's value.
- Unknown `OPTOUTS_` variables are ignored.
- Times are seconds unless the name says otherwise.
"""

_TAIL = """\
## Where the settings are used

- `make run` and `optouts worker`: all of them.
- The guarded sender and `optouts send`: `OPTOUTS_KAFKA_BROKERS`, `OPTOUTS_TWILIO_ACCOUNT_SID`,
  `OPTOUTS_TWILIO_AUTH_TOKEN`, `OPTOUTS_API_URL`, `OPTOUTS_PUBLIC_BASE_URL` ([twilio.md](twilio.md)).
- `optouts backfill`: the Twilio settings, `OPTOUTS_TWILIO_SENDERS` or
  `OPTOUTS_TWILIO_MESSAGING_SERVICES`, the brokers and the keywords ([twilio.md](twilio.md)).
- `optouts replay` and `optouts verify`: the workers' brokers, `OPTOUTS_APP_ID` and keywords
  ([operations.md](operations.md#rebuilding-the-lists-from-the-log)).
- On Kubernetes, `deploy/kubernetes/base/configmap.yaml` sets them for the workers and the tokens come
  from a Secret ([operations.md](operations.md)).
"""


def render() -> str:
    """The page, as `make configuration` writes it."""
    fields = Settings.model_fields
    grouped = [name for names in GROUPS.values() for name in names]
    if sorted(grouped) != sorted(fields):
        missing, unknown = set(fields) - set(grouped), set(grouped) - set(fields)
        raise ValueError(f"settings not in a group: {sorted(missing)}; not settings: {sorted(unknown)}")
    sections = [_HEAD]
    for title, names in GROUPS.items():
        rows = [_row(name, fields[name]) for name in names]
        table = "| variable | default | allowed | meaning |\n|---|---|---|---|\n" + "\n".join(rows)
        sections.append(f"## {title}\n\n{table}\n")
    sections.append(_TAIL)
    return "\n".join(sections)


def _row(name: str, field: FieldInfo) -> str:
    return f"| `OPTOUTS_{name.upper()}` | {_default(field)} | {_allowed(field)} | {field.description or ''} |"


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if value == ():
        return "empty"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _allowed(field: FieldInfo) -> str:
    annotation: Any = field.annotation
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{choice}`" for choice in get_args(annotation))
    if annotation == tuple[str, ...]:
        return "list"
    if SecretStr in get_args(annotation) or annotation is SecretStr:
        return "secret"
    bounds = {type(rule): rule for rule in field.metadata}
    words = []
    if MinLen in bounds and MaxLen in bounds and bounds[MinLen].min_length == bounds[MaxLen].max_length:
        words.append(f"{bounds[MinLen].min_length} characters")
    if Ge in bounds and Le in bounds:
        words.append(f"{bounds[Ge].ge} to {bounds[Le].le}")
    else:
        words += [f"≥ {bounds[Ge].ge}"] if Ge in bounds else []
        words += [f"> {bounds[Gt].gt}"] if Gt in bounds else []
        words += [f"≤ {bounds[Le].le}"] if Le in bounds else []
        words += [f"< {bounds[Lt].lt}"] if Lt in bounds else []
    return ", ".join(words)


def stale(page: Path = PAGE) -> bool:
    return not page.exists() or page.read_text() != render()


if __name__ == "__main__":
    PAGE.write_text(render())
    sys.exit(0)
