"""All settings in one place: environment (`PACS_GATEWAY_*`) over an optional TOML file.

The TOML file is named by `PACS_GATEWAY_CONFIG` (or `--config` on the command line).
Every setting is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.core.contacts import Contacts
from gateway.core.viewer_links import ViewerLink
from jobs import RetryPolicy
from pacs.admission import InboundLimits, SenderRule, Senders
from pacs.models import LocalNode, Peer
from pacs.tls import TlsClient, TlsServer
from r4.database import production_url
from r4.mapping import R4Mapping

CONFIG_ENV = "PACS_GATEWAY_CONFIG"


class PacsSettings(BaseModel):
    """One PACS the gateway queries and retrieves from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short name used in messages and on the command line.")
    ae_title: str = Field(description="The PACS's AE title (called AE).")
    host: str
    port: int = 104
    retrieve_method: Literal["move", "get", "auto"] = Field(
        "move",
        description="C-MOVE to the gateway's Storage SCP, C-GET on one association, or auto: "
        "C-GET, then C-MOVE for images C-GET could not bring.",
    )
    max_associations: int = Field(2, ge=1, description="Concurrent associations we open.")
    connect_timeout: float = Field(5.0, gt=0, description="TCP connect timeout, seconds.")
    acse_timeout: float = Field(10.0, gt=0, description="Association negotiation timeout.")
    dimse_timeout: float = Field(
        60.0, gt=0, description="Idle time allowed between two messages or two arrivals."
    )
    max_find_matches: int = Field(
        1000,
        ge=1,
        description="Matches one C-FIND may answer; past it the fetch fails with a sentence "
        "asking for a narrower date range (memory stays bounded meanwhile).",
    )

    tls: bool = Field(
        False,
        description="DICOM over TLS for every association with this PACS (C-ECHO, C-FIND, "
        "C-MOVE, C-GET); its certificate is checked against `tls_ca_file` and `host`.",
    )
    tls_ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the PACS's certificate (a practice's "
        "own CA); unset: the CAs this machine trusts.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="The gateway's client certificate (PEM), for a PACS that asks for one; "
        "with `tls_key_file`.",
    )
    tls_key_file: Path | None = Field(
        None, description="The unencrypted PEM private key of `tls_cert_file`."
    )

    @model_validator(mode="after")
    def _tls_complete(self) -> PacsSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                f"PACS {self.name!r}: tls_cert_file and tls_key_file go together; set both "
                "or neither."
            )
        if not self.tls and (self.tls_ca_file or self.tls_cert_file):
            raise ValueError(
                f"PACS {self.name!r}: tls_ca_file, tls_cert_file and tls_key_file are used "
                "only with tls = true; set it, or remove them."
            )
        return self

    def tls_client(self) -> TlsClient | None:
        if not self.tls:
            return None
        return TlsClient(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)

    def peer(self) -> Peer:
        return Peer(
            name=self.name,
            ae_title=self.ae_title,
            host=self.host,
            port=self.port,
            retrieve_method=self.retrieve_method,
            max_associations=self.max_associations,
            connect_timeout=self.connect_timeout,
            acse_timeout=self.acse_timeout,
            dimse_timeout=self.dimse_timeout,
            max_find_matches=self.max_find_matches,
            tls=self.tls_client(),
        )


class PrefetchSettings(BaseModel):
    """`[prefetch]`: what a pass fetches for the patients of a day's appointments."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False,
        description="Run prefetch by itself in `serve`: the evening pass at `run_at` and the "
        "rolling pass for appointments coming up (needs [r4] with the appointment book).",
    )
    run_at: time = Field(
        time(18, 0),
        description="Local time of the evening pass, for the next working day's appointments.",
    )
    ahead_minutes: int = Field(
        120,
        ge=0,
        le=24 * 60,
        description="The rolling pass (every 15 minutes) fetches for today's appointments "
        "starting within this many minutes whose patient has no prefetch yet (booked today).",
    )
    on_patient_sync: bool = Field(
        False,
        description="A Flynotes `patient-sync` (sent as a patient's screen opens) also queues "
        "a fetch of that patient's recent studies, at a person's priority.",
    )
    years_back: int = Field(
        5, ge=0, le=100, description="Studies of this many years before the appointment day."
    )
    modalities: list[str] = Field(
        default_factory=list, description="Only these modalities (e.g. PX, IO, CT); empty: all."
    )
    keep_prefetched_days: int = Field(
        7,
        ge=0,
        description="Prefetched studies are kept until the appointment day plus this many "
        "days; then the storage limits treat them as any other study.",
    )


class R4Settings(R4Mapping):
    """`[r4]`: where R4 is and which tables and columns hold what (see `r4.mapping`)."""

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the R4 database (tests: a SQLite file); replaces "
        "the older top-level `r4_database_url`.",
    )
    odbc_driver: str | None = Field(
        None,
        description="ODBC driver for R4 on SQL Server (`SQL Server Native Client 11.0` on "
        "Windows, `FreeTDS` on Linux); Windows authentication. Replaces `r4_odbc_driver`.",
    )
    server: str | None = Field(None, description="SQL Server holding R4; default `.`.")
    database: str | None = Field(
        None, description="R4's database; default: the preset's name (or `r4_database`)."
    )

    max_uptime: float = Field(
        24 * 3600.0,
        gt=0,
        description="Seconds the practice side runs before exiting 75 for a fresh start "
        "(the connector this replaces restarted daily).",
    )

    def mapping(self) -> R4Mapping:
        return R4Mapping.model_validate(self.model_dump(include=set(R4Mapping.model_fields)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PACS_GATEWAY_", env_nested_delimiter="__", extra="forbid"
    )

    ae_title: str = Field("PACSGATEWAY", max_length=16, description="The gateway's AE title.")
    dicom_port: int = Field(11112, description="Port of the gateway's Storage SCP.")
    dicom_bind: str = Field("0.0.0.0", description="Address the Storage SCP listens on.")
    allowed_calling_aets: list[str] = Field(
        default_factory=list,
        description="Senders allowed to send to the Storage SCP besides the configured PACS: "
        "`AET` (from any address), `AET@host` or `AET@network` (`CT1@10.0.0.7`, "
        "`US@10.0.2.0/24`). A configured PACS's AE title is let in only from that PACS's "
        "`host`; naming it here without a host does not widen that.",
    )
    dicom_max_associations: int = Field(
        16, ge=2, description="Associations the Storage SCP serves at once, from all senders."
    )
    dicom_max_associations_per_host: int = Field(
        4, ge=1, description="Associations (and connections) one address may have open at once."
    )
    dicom_reserved_for_pacs: int = Field(
        4,
        ge=0,
        description="Of `dicom_max_associations`, kept for the configured PACS's hosts, so "
        "senders that are no configured PACS cannot take the room a C-MOVE needs.",
    )
    dicom_idle_timeout: float = Field(
        15.0,
        gt=0,
        description="Seconds an association opened to the Storage SCP may stay silent before "
        "it is closed.",
    )
    dicom_tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate of the Storage SCP; with `dicom_tls_key_file`, its port "
        "speaks DICOM over TLS only (PACS sending by C-MOVE, modalities pushing: all of "
        "them over TLS).",
    )
    dicom_tls_key_file: Path | None = Field(
        None, description="The unencrypted PEM private key of `dicom_tls_cert_file`."
    )
    dicom_tls_ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) whose client certificates the Storage SCP "
        "accepts; set, every sender must present one (unset: any sender that speaks TLS).",
    )
    maximum_pdu_size: int = Field(0, ge=0, description="Largest PDU we accept; 0 = no limit.")
    data_dir: Path = Field(Path("var"), description="Where the gateway keeps its data.")
    storage_dir: Path | None = Field(
        None, description="Where studies are stored; default <data_dir>/studies."
    )
    storage_max_gb: float | None = Field(
        None,
        gt=0,
        description="Most the study store may hold, in GB; least recently used studies are "
        "removed to stay within it. Unset: no limit of its own (`storage_min_free_gb` still "
        "holds).",
    )
    storage_min_free_gb: float = Field(
        5.0,
        ge=0,
        description="Free space, in GB, the gateway always leaves on the disk that holds the "
        "store (it is R4's and SQL Server's disk too): studies are removed, least recently "
        "used first, and a fetch that cannot have the room waits.",
    )
    keep_unused_days: int = Field(
        90,
        ge=1,
        description="A study nobody fetched, viewed, previewed or read by DICOMweb for this "
        "many days is removed; a fetch brings it back.",
    )
    storage_in_use_minutes: float = Field(
        10.0,
        ge=0,
        description="A study viewed, previewed, served or fetched within this many minutes "
        "counts as in use: it is not removed to make room (someone may be looking at it).",
    )
    evict_pushed: bool = Field(
        False,
        description="Whether studies the gateway has only from a push (no fetch found them on "
        "a PACS) may be removed by the limits; by default they are kept.",
    )
    keep_jobs_days: int = Field(
        180,
        ge=1,
        description="Finished jobs and their events older than this many days are deleted "
        "(the audit trail is never deleted).",
    )
    pacs: list[PacsSettings] = Field(default_factory=list, description="The PACS peers.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the job store and index; default SQLite "
        "<data_dir>/gateway.db. A postgresql+psycopg:// URL lets several processes share it.",
    )
    http_host: str = Field(
        "127.0.0.1",
        description="Address the HTTP API listens on; `0.0.0.0` (all addresses) for the pages "
        "to be reachable from clinicians' PCs (see docs/deployment.md for HTTPS).",
    )
    http_port: int = Field(8080, description="Port of the HTTP API.")
    ssl_certfile: Path | None = Field(
        None,
        description="PEM certificate (chain) for HTTPS served by the gateway itself; with "
        "`ssl_keyfile`. Unset: plain HTTP (put a TLS reverse proxy in front).",
    )
    ssl_keyfile: Path | None = Field(None, description="PEM private key for `ssl_certfile`.")
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (e.g. `https://viewer.practice.example`) whose pages may call "
        "/dicomweb and the API from a browser, sending `Authorization: Bearer <key>`; cookies "
        "are never accepted cross-origin. Empty: no cross-origin access.",
    )
    failed_key_attempts_per_minute: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Wrong API keys one client address may send in a minute (on the API and "
        "the page login); past it every key from that address gets 429 with Retry-After until "
        "the minute is over, audited as auth.throttled. Other addresses are not affected.",
    )
    workers: int = Field(2, ge=0, description="Fetch job worker threads in this process.")
    lease_seconds: float = Field(
        30.0, gt=0, description="A claimed job whose worker stops renewing is taken over after."
    )
    fetch_max_requests: int = Field(
        3, ge=1, description="Retrieves of one study before missing images count as a failure."
    )
    retry_initial_delay: float = Field(10.0, gt=0, description="First wait after a failure, s.")
    retry_max_delay: float = Field(600.0, gt=0, description="Longest wait between attempts, s.")
    retry_max_attempts: int = Field(12, ge=1, description="Attempts before a job fails.")
    retry_max_total: float = Field(
        24 * 3600.0, gt=0, description="Seconds after the first attempt when retrying stops."
    )
    preview_max_age: int = Field(
        3600,
        ge=0,
        description="Seconds a browser may reuse a preview image (Cache-Control max-age); "
        "after that it revalidates with its ETag.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text`: one timestamped line per event; `json`: one JSON object per line "
        "(time, level, logger, message, and job fields such as job_id, kind, counts, bytes).",
    )
    preview_max_frame_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest decoded frame (rows x columns x samples x bits / 8) a preview is "
        "drawn from; larger images get the placeholder and a log line, checked before any "
        "pixel data is read. The default (64 MiB) fits a 5000 x 6400 16-bit mammogram.",
    )
    preview_max_renders: int = Field(
        2,
        ge=1,
        description="Previews (and DICOMweb rendered images) decoded at once by this process; "
        "each may take a few hundred MB at the size limit.",
    )
    preview_render_wait: float = Field(
        20.0,
        ge=0,
        description="Seconds a preview request waits for a free render slot before it gets "
        "the placeholder (`X-Preview-Unavailable`: busy; the next request tries again).",
    )
    viewer_links: list[ViewerLink] = Field(
        default_factory=list,
        description="Image viewers shown on study responses, each `{name, url_template}` "
        '(TOML: `[[viewer_links]]`), e.g. `url_template = "https://ohif.example/viewer?'
        'StudyInstanceUIDs={study_uid}"`; `{study_uid}` is replaced, URL-encoded.',
    )
    contacts: Contacts = Field(
        default_factory=Contacts,
        description="Whom staff call when images cannot be fetched, listed on the fallback "
        "procedure's page (TOML: `[contacts.it]`, `[contacts.pacs_vendor]`, "
        "`[contacts.radiology]`; each key below).",
    )
    # --- pages (/ui): login with an API key, kept in a signed session cookie ----------------
    session_secret: SecretStr | None = Field(
        None,
        description="Signs the pages' session cookies. Unset: generated once into "
        "<data_dir>/session.key (mode 0600) and shared by the gateways on this host; gateways "
        "on several hosts behind one address need the same value here.",
    )
    session_cookie_secure: bool = Field(
        False,
        description="Send the session cookie over HTTPS only; set it when people reach the "
        "pages through HTTPS (directly or behind a proxy).",
    )
    session_max_age: int = Field(
        12 * 3600, ge=60, description="Seconds a page login lasts before asking for the key again."
    )

    # --- practice side (R4, Flynotes, Rollbar): everything off until configured -------------
    r4: R4Settings = Field(
        default_factory=R4Settings,
        description="The R4 database and its table mapping: the `[r4]` table below.",
    )
    prefetch: PrefetchSettings = Field(
        default_factory=PrefetchSettings,
        description="Prefetch for appointments: the `[prefetch]` table below.",
    )
    r4_database_url: str | None = Field(
        None,
        description="Older spelling of `[r4] database_url` (still read; `[r4]` wins). "
        "Setting either, or an ODBC driver, lets fetches name an R4 patient.",
    )
    r4_odbc_driver: str | None = Field(
        None,
        description="Older spelling of `[r4] odbc_driver`: ODBC driver for R4 on SQL Server, "
        "e.g. `SQL Server Native Client 11.0`; connects with Windows authentication "
        "(Trusted_Connection) as the service's account. Needs the `mssql` extra.",
    )
    r4_server: str = Field(".", description="Older spelling of `[r4] server`.")
    r4_database: str = Field("sys2000", description="Older spelling of `[r4] database`.")
    flynotes_url: str | None = Field(
        None,
        description="Base URL of the Flynotes practice API. With R4 and the licence key it "
        "turns on the bulk upload, the licence/version check and the SQS command loop.",
    )
    flynotes_licence_key: SecretStr | None = Field(
        None, description="The practice's Flynotes licence key (a secret: prefer the environment)."
    )
    rollbar_access_token: SecretStr | None = Field(
        None,
        description="Rollbar post_server_item token; errors are reported, patient data "
        "scrubbed. Unset: errors go to the local log only.",
    )
    rollbar_environment: str = Field("production", description="Rollbar environment name.")
    rollbar_endpoint: str | None = Field(
        None, description="Rollbar API endpoint; default Rollbar's own (tests use a recorder)."
    )
    bulk_upload_interval: float = Field(
        3600.0, gt=0, description="Seconds between bulk uploads of all patients to Flynotes."
    )
    licence_check_interval: float = Field(
        3600.0, gt=0, description="Seconds between licence/version checks (self-update)."
    )
    upload_batch_size: int = Field(500, ge=1, le=5000, description="Patients per upload batch.")
    update_index_url: str | None = Field(
        None,
        description="Private package index the self-update installs from; without it or "
        "update_find_links, self-update is refused (never pip's public index).",
    )
    update_find_links: str | None = Field(
        None, description="Directory of wheels the self-update installs from (no index)."
    )
    sqs_endpoint_url: str | None = Field(
        None, description="SQS endpoint; default AWS's for the queue's region (tests: moto)."
    )
    sqs_wait_seconds: int = Field(
        5, ge=1, le=20, description="SQS long-poll time; also bounds how long a stop takes."
    )
    pacs_id_rule_prefix: str = Field(
        "", description="PACS PatientID = this + R4 chart number (zero-padded) + suffix."
    )
    pacs_id_rule_suffix: str = Field("", description="See `pacs_id_rule_prefix`.")
    pacs_id_rule_pad_width: int | None = Field(
        None, ge=1, description="Zero-pad the chart number to this many digits; unset: as is."
    )
    match_by_demographics: bool = Field(
        False,
        description="A fetch by R4 patient also asks the PACS for studies by family (or "
        "given) name and birth date, to find studies filed under a PACS id not linked to the "
        "patient. They go to the review queue and are fetched only once staff confirm them.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"The configuration file {config_file} does not exist.")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'gateway.db'}"
        return self

    @model_validator(mode="after")
    def _flynotes_needs_licence(self) -> Settings:
        if bool(self.flynotes_url) != (self.flynotes_licence_key is not None):
            raise ValueError(
                "flynotes_url and flynotes_licence_key go together: set both or neither"
            )
        return self

    def r4_url(self) -> str | None:
        """The R4 database URL, or None when R4 is not configured. `[r4]` values win over
        the older top-level `r4_*` names, which keep working."""
        if self.r4.database_url or self.r4_database_url:
            return self.r4.database_url or self.r4_database_url
        driver = self.r4.odbc_driver or self.r4_odbc_driver
        if driver:
            server = self.r4.server or self.r4_server
            database = self.r4.database or self.r4_database
            if not self.r4.database and "r4_database" not in self.model_fields_set:
                database = self.r4.preset  # the presets are named after their databases
            return production_url(driver, server, database)
        return None

    def r4_mapping(self) -> R4Mapping:
        return self.r4.mapping()

    @property
    def practice_configured(self) -> bool:
        """R4 and Flynotes are both set: the practice side's loops run in `serve`."""
        return self.r4_url() is not None and self.flynotes_url is not None

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_delay=self.retry_initial_delay,
            max_delay=self.retry_max_delay,
            max_attempts=self.retry_max_attempts,
            max_total=self.retry_max_total,
        )

    @property
    def studies_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "studies"

    def local_node(self) -> LocalNode:
        return LocalNode(
            ae_title=self.ae_title,
            port=self.dicom_port,
            bind_address=self.dicom_bind,
            allowed_calling_aets=tuple(self.allowed_calling_aets),
            maximum_pdu_size=self.maximum_pdu_size,
        )

    def peer(self, name: str | None = None) -> Peer:
        """The PACS named `name`, or the first configured one."""
        if not self.pacs:
            raise LookupError(
                "No PACS is configured: add a [[pacs]] entry to the configuration file."
            )
        if name is None:
            return self.pacs[0].peer()
        for entry in self.pacs:
            if entry.name == name:
                return entry.peer()
        known = ", ".join(p.name for p in self.pacs)
        raise LookupError(f"No PACS named {name!r} is configured (known: {known}).")

    def pacs_ae_titles(self) -> list[str]:
        return [p.ae_title for p in self.pacs]

    def senders(self) -> Senders:
        """Who may send to the Storage SCP, from where, and how many at once."""
        return Senders.build(
            [(p.ae_title, p.host) for p in self.pacs],
            self.allowed_calling_aets,
            InboundLimits(
                total=self.dicom_max_associations,
                per_address=self.dicom_max_associations_per_host,
                reserved=min(self.dicom_reserved_for_pacs, self.dicom_max_associations - 1),
                idle_timeout=self.dicom_idle_timeout,
            ),
        )

    def scp_tls(self) -> TlsServer | None:
        if self.dicom_tls_cert_file is None or self.dicom_tls_key_file is None:
            return None
        return TlsServer(self.dicom_tls_cert_file, self.dicom_tls_key_file, self.dicom_tls_ca_file)

    @model_validator(mode="after")
    def _scp_tls_complete(self) -> Settings:
        if (self.dicom_tls_cert_file is None) != (self.dicom_tls_key_file is None):
            raise ValueError(
                "dicom_tls_cert_file and dicom_tls_key_file go together; set both or neither."
            )
        if self.dicom_tls_ca_file is not None and self.dicom_tls_cert_file is None:
            raise ValueError(
                "dicom_tls_ca_file is used only with dicom_tls_cert_file and "
                "dicom_tls_key_file (the Storage SCP's own certificate); set them, or remove it."
            )
        return self

    @model_validator(mode="after")
    def _senders_readable(self) -> Settings:
        for entry in self.allowed_calling_aets:
            SenderRule.parse(entry)  # ValueError says which entry and how to write it
        return self
