"""The one settings object: read from `OPTOUTS_*` environment variables once, then passed around."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from projections.keywords import DEFAULT_KEYWORDS, Keywords

KeywordList = Annotated[tuple[str, ...], NoDecode]
CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Every setting of the service; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="OPTOUTS_", frozen=True, extra="ignore")

    kafka_brokers: str | None = Field(
        None, description="Comma-separated host:port list; unset: start the embedded broker."
    )
    web_host: str = Field("127.0.0.1", description="Interface the HTTP API binds to.")
    web_port: int = Field(6066, ge=1, le=65535)
    data_dir: Path = Field(Path("data"), description="Where the RocksDB tables live.")
    default_region: str = Field("US", min_length=2, max_length=2, description="Region for national numbers.")
    twilio_auth_token: SecretStr | None = None
    public_base_url: str | None = Field(None, description="The public URL Twilio calls (signatures).")
    twilio_account_sid: str | None = Field(None, description="Twilio account SID, for the REST API.")
    twilio_api_url: str | None = Field(
        None, description="Base URL of Twilio's REST API; unset: Twilio's own (https://api.twilio.com)."
    )
    twilio_senders: CommaList = Field((), description="Our Twilio numbers, comma-separated (backfill).")
    twilio_messaging_services: CommaList = Field(
        (), description="Our Messaging Service SIDs, comma-separated (backfill)."
    )
    twilio_timeout: float = Field(10.0, gt=0, description="Timeout of one Twilio REST call, seconds.")
    api_url: str | None = Field(
        None, description="The service's HTTP API for the guarded sender; unset: this worker's."
    )
    opt_out_keywords: KeywordList = Field((), description="Custom opt-out keywords, comma-separated.")
    opt_in_keywords: KeywordList = Field((), description="Custom opt-in keywords, comma-separated.")
    app_id: str = Field("sms-optouts", description="Faust app id: consumer group and table prefix.")
    partitions: int = Field(4, ge=1, description="Partitions of every topic created.")
    replication_factor: int = Field(1, ge=1)
    standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition kept by other workers: a takeover starts"
        " from them, but each copy costs its worker the owner's changelog writes.",
    )
    session_timeout: float = Field(10.0, gt=0, description="Consumer session timeout, seconds.")
    rebalance_timeout: float = Field(10.0, gt=0, description="Consumer rebalance timeout, seconds.")
    send_timeout: float = Field(
        10.0, gt=0, description="Seconds a write waits for the brokers to acknowledge it."
    )
    override_wait: float = Field(
        5.0, ge=0, description="Seconds an override waits for the list to show it before answering."
    )
    fetch_max_wait: float = Field(
        0.05, gt=0, le=1.5, description="Seconds a consumer fetch waits on the brokers for new records."
    )
    batch_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="Bytes a worker fetches at most per partition at once: the largest batch an agent folds.",
    )
    max_ahead: float = Field(
        300.0,
        gt=0,
        description="Seconds an event's occurred_at may be ahead of its record's Kafka timestamp; further"
        " ahead it is kept aside in sms-dead-letters, not folded (a date in the future is a mistake).",
    )
    ready_max_lag: int = Field(
        10_000,
        ge=0,
        description="Events an assigned input partition may lag behind its end before /ready says no.",
    )
    lag_interval: float = Field(
        5.0, gt=0, description="Seconds between two looks at consumer lag and the brokers' reachability."
    )
    operator_token: SecretStr | None = Field(
        None,
        description="The token operators and the CLI present (Bearer, or the session /login sets); unset:"
        " the worker generates one at start into <data_dir>/operator-token and prints its login URL.",
    )
    auth: Literal["token", "off"] = Field(
        "token",
        description="'off' answers everything without the operator token, for a trusted network only"
        " (the worker warns at start).",
    )
    allowed_hosts: CommaList = Field(
        (),
        description="More Host header values the web server answers, comma-separated ('name' for any"
        " port, 'name:port'; '*' for any); loopback, the web host and the public URL's host always are.",
    )
    operator_session_hours: float = Field(
        12.0, gt=0, description="Hours a login lasts: the session cookie /login sets expires then."
    )
    log_level: str = "info"
    embedded_broker_pid: int | None = Field(
        None,
        description="Internal: set by `optouts run` when it restarts itself into a new generation, so"
        " that it takes over the embedded broker it started (and stops it on Ctrl-C).",
    )

    @field_validator(
        "opt_out_keywords",
        "opt_in_keywords",
        "twilio_senders",
        "twilio_messaging_services",
        "allowed_hosts",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(word.strip() for word in value.split(",") if word.strip())
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @property
    def brokers(self) -> list[str]:
        """The configured bootstrap servers (empty when the embedded broker is to be started)."""
        return [b.strip() for b in (self.kafka_brokers or "").split(",") if b.strip()]

    @property
    def keywords(self) -> Keywords:
        return DEFAULT_KEYWORDS.with_custom(self.opt_out_keywords, self.opt_in_keywords)

    @property
    def service_url(self) -> str:
        """Where the service's HTTP API answers: `api_url`, else this host's worker."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::", "") else self.web_host
        return f"http://{host}:{self.web_port}"
