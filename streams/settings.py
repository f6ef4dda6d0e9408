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
    """Every setting of the service. docs/configuration.md is generated from these fields
    (`make configuration`; streams.settings_reference): their descriptions are the reference."""

    model_config = SettingsConfigDict(env_prefix="OPTOUTS_", frozen=True, extra="ignore")

    kafka_brokers: str | None = Field(
        None,
        description=(
            "Comma-separated `host:port` bootstrap servers; unset: `make run` starts the embedded broker"
        ),
    )
    web_host: str = Field(
        "127.0.0.1",
        description=(
            "Interface the HTTP API binds to, and the host other workers forward requests to (set "
            "`0.0.0.0` or the host's name/IP in a container or cluster)"
        ),
    )
    web_port: int = Field(
        6066,
        ge=1,
        le=65535,
        description="HTTP port",
    )
    data_dir: Path = Field(
        Path("data"),
        description=(
            "Where the RocksDB tables live (`make run` on the embedded broker uses `data/embedded`, "
            "emptied at each start); a replay's generation *N* uses `OPTOUTS_DATA_DIR/gN`"
        ),
    )
    default_region: str = Field(
        "US",
        min_length=2,
        max_length=2,
        description="Region in which national phone numbers are read",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        description=(
            "The Twilio account's auth token: checks webhook signatures, and authenticates the sender and"
            " the backfill to Twilio's REST API. Unset: the webhooks answer 503. Never logged"
        ),
    )
    public_base_url: str | None = Field(
        None,
        description=(
            "The URL Twilio is given for the service (`https://...`, with any path prefix the proxy "
            "strips): webhook signatures are checked against it, and the sender's status callbacks point "
            "to it. Unset: the webhooks answer 503"
        ),
    )
    twilio_account_sid: str | None = Field(
        None,
        description="The Twilio account (`AC...`), for the REST API (sender, backfill)",
    )
    twilio_api_url: str | None = Field(
        None,
        description=(
            "Another base URL for Twilio's REST API (a stand-in, an egress proxy); unset: "
            "`https://api.twilio.com`"
        ),
    )
    twilio_senders: CommaList = Field(
        (),
        description=(
            "Our numbers, short codes and sender IDs, comma-separated: whose inbound messages `optouts "
            "backfill` reads"
        ),
    )
    twilio_messaging_services: CommaList = Field(
        (),
        description=(
            "Our Messaging Service SIDs (`MG...`), comma-separated: `optouts backfill` reads their "
            "inbound messages too"
        ),
    )
    twilio_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds one call to Twilio's REST API may take",
    )
    api_url: str | None = Field(
        None,
        description=(
            "The service's HTTP API, where the guarded sender reads lists; unset: "
            "`http://OPTOUTS_WEB_HOST:OPTOUTS_WEB_PORT`"
        ),
    )
    opt_out_keywords: KeywordList = Field(
        (),
        description="Custom opt-out keywords, comma-separated (added to Twilio's defaults)",
    )
    opt_in_keywords: KeywordList = Field(
        (),
        description="Custom opt-in keywords, comma-separated",
    )
    app_id: str = Field(
        "sms-optouts",
        description=(
            "Faust app id: the consumer group and the prefix of the changelog topics. A replay's "
            "generation *N* runs as `OPTOUTS_APP_ID-gN` ([operations.md](operations.md#generations))"
        ),
    )
    partitions: int = Field(
        4,
        ge=1,
        description="Partitions of each topic the service creates; the upper bound on workers",
    )
    replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor of the topics it creates (3 on a production cluster)",
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        description=(
            "Standby copies of each table partition that other workers keep up to date, so that a "
            "takeover starts from them instead of the changelog's beginning; each copy costs its worker "
            "the owner's changelog writes (with several workers on one machine, `0` roughly doubles their"
            " throughput; see [performance.md](performance.md))"
        ),
    )
    session_timeout: float = Field(
        10.0,
        gt=0,
        description="Consumer session timeout, seconds",
    )
    rebalance_timeout: float = Field(
        10.0,
        gt=0,
        description="Consumer rebalance timeout, seconds (a worker's start waits for it on some brokers)",
    )
    send_timeout: float = Field(
        10.0,
        gt=0,
        description=(
            "Seconds a write waits for the brokers' acknowledgement: an override or a Twilio webhook "
            "answers 503 past it; the guarded sender and the backfill give up"
        ),
    )
    override_wait: float = Field(
        5.0,
        ge=0,
        description=(
            "Seconds an override waits for the list to show it before answering (`list_updated: false` "
            "past it)"
        ),
    )
    fetch_max_wait: float = Field(
        0.05,
        gt=0,
        le=1.5,
        description=(
            "Seconds a consumer fetch waits on the brokers for new records (Faust's own is a fixed 1.5 s,"
            " which some brokers add to every hop)"
        ),
    )
    batch_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description=(
            "Bytes a worker fetches at most at once, per partition and for the whole fetch (or one "
            "record batch, if a producer's is larger): the largest batch an agent folds (about 1,000 events)"
        ),
    )
    max_ahead: float = Field(
        300.0,
        gt=0,
        description=(
            "Seconds an event's `occurred_at` may be ahead of its record's Kafka timestamp; further ahead"
            " it goes to `sms-dead-letters`, not to a list"
        ),
    )
    ready_max_lag: int = Field(
        10_000,
        ge=0,
        description=(
            "Events an assigned input partition may lag behind its end (committed offset to the broker's "
            "end offset) before `GET /ready` answers 503"
        ),
    )
    lag_interval: float = Field(
        5.0,
        gt=0,
        description=(
            "Seconds between two looks at the brokers (reachable? lag per partition) for `/ready` and "
            "`/metrics`"
        ),
    )
    operator_token: SecretStr | None = Field(
        None,
        description=(
            "The token everything but health, readiness, metrics and the webhooks needs (`Authorization: "
            "Bearer TOKEN`, or the session `/login` sets); 16+ visible ASCII characters, the same on "
            "every worker. Unset: each worker generates one at start into "
            "`OPTOUTS_DATA_DIR/operator-token` (0600) and prints its login URL; the `optouts` commands "
            "read it there. Never logged ([security.md](security.md))"
        ),
    )
    auth: Literal["token", "off"] = Field(
        "token",
        description="`off`: no operator token is checked, for a trusted network only (a WARNING at start)",
    )
    allowed_hosts: CommaList = Field(
        (),
        description=(
            "More `Host` values the web server answers, comma-separated (`name` on any port, `name:port`;"
            " `*` for any); loopback, `OPTOUTS_WEB_HOST` and the public URL's host always are; others get"
            " 421"
        ),
    )
    operator_session_hours: float = Field(
        12.0,
        gt=0,
        description="How long a browser's login lasts (the session cookie's expiry)",
    )
    log_level: str = Field(
        "info",
        description="Worker log level",
    )
    embedded_broker_pid: int | None = Field(
        None,
        description=(
            "Internal: set by `optouts run` when it restarts itself into a new generation, so that it "
            "keeps the embedded broker it started (and stops it on Ctrl-C); never set it yourself"
        ),
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
    def local_web_host(self) -> str:
        """Where this machine reaches a worker's HTTP API: `web_host`, or loopback when it binds to
        every interface."""
        return "127.0.0.1" if self.web_host in ("0.0.0.0", "::", "") else self.web_host

    @property
    def service_url(self) -> str:
        """Where the service's HTTP API answers: `api_url`, else this host's worker."""
        if self.api_url:
            return self.api_url.rstrip("/")
        return f"http://{self.local_web_host}:{self.web_port}"
