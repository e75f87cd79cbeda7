"""One typed settings object for the whole hub, read from ``HUB_*`` environment variables.

Every field names its environment variable and says in one sentence what it does; the
README's configuration table is generated from this list (``hub config``), so the two
cannot drift. Defaults give the embedded mode: a local Kafka broker the hub runs itself
and the embedded ClickHouse engine (chDB) under the hub's home.

An optional file (``HUB_CONFIG_FILE``, or ``<home>/hub.env``) holds ``KEY=VALUE`` lines
with the same names; the environment wins over the file.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hub.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    home: Path = _setting(
        "HUB_HOME", Path("~/.gameday-hub"),
        "Directory for the hub's state: broker data, the embedded store, logs and pid files.")
    config_file: str = _setting(
        "HUB_CONFIG_FILE", "",
        "Optional file of KEY=VALUE lines read before the environment (default <home>/hub.env).")

    kafka_bootstrap: str = _setting(
        "HUB_KAFKA_BOOTSTRAP", "",
        "Bootstrap servers of an existing Kafka cluster; when set the hub starts no broker of its own.")
    kafka_version: str = _setting(
        "HUB_KAFKA_VERSION", "4.1.1",
        "Apache Kafka version of the embedded broker, fetched from Maven Central.")
    kafka_cache: Path = _setting(
        "HUB_KAFKA_CACHE", Path("~/.cache/gameday-hub/kafka"),
        "Where the embedded broker's jars are cached (outside the repository), one folder per version.")
    kafka_port: int = _setting(
        "HUB_KAFKA_PORT", 19092,
        "Loopback port of the embedded broker's client listener (the controller uses the next port).")
    kafka_heap: str = _setting(
        "HUB_KAFKA_HEAP", "512m",
        "Java heap size of the embedded broker.")
    kafka_start_timeout: float = _setting(
        "HUB_KAFKA_START_TIMEOUT", 90.0,
        "Seconds to wait for the embedded broker to answer before giving up.")
    partitions: int = _setting(
        "HUB_PARTITIONS", 4,
        "Partitions of each hub topic when the hub creates it.")

    clickhouse_url: str = _setting(
        "HUB_CLICKHOUSE_URL", "",
        "URL of a ClickHouse server (http://user:pass@host:8123); empty means the embedded engine under <home>/clickhouse.")
    database: str = _setting(
        "HUB_DATABASE", "hub",
        "ClickHouse database that holds the hub's tables.")
    store_host: str = _setting(
        "HUB_STORE_HOST", "127.0.0.1",
        "Address `hub store serve` listens on; keep it on loopback unless HUB_STORE_TOKEN is set.")
    store_port: int = _setting(
        "HUB_STORE_PORT", 18123,
        "Port of `hub store serve`, the store server through which several workers on one host share the embedded store (HUB_CLICKHOUSE_URL=http://127.0.0.1:<port>).")
    store_token: str = _setting(
        "HUB_STORE_TOKEN", "",
        "Secret the store server requires of every client as its ClickHouse password (HUB_CLICKHOUSE_URL=http://default:<secret>@host:port); empty: generated into <home>/store-token on its first start, where the hub's own clients with that home find it.")
    store_endpoint: bool = _setting(
        "HUB_STORE_ENDPOINT", True,
        "In embedded mode the worker serves the store over ClickHouse's HTTP interface on HUB_STORE_HOST:HUB_STORE_PORT, for Grafana's datasource (user HUB_GRAFANA_CLICKHOUSE_USER, read-only; its password required off loopback) and the token's holder; false turns it off.")
    ttl_days: int = _setting(
        "HUB_TTL_DAYS", 90,
        "Days telemetry rows are kept before ClickHouse drops them (0 keeps them forever); records with an event time older than this are refused to the dead-letter topic as timestamp out of range, since the TTL would drop them at once.")

    topic_requests: str = _setting(
        "HUB_TOPIC_REQUESTS", "hub.requests", "Topic of gateway request-leg records.")
    topic_experiments: str = _setting(
        "HUB_TOPIC_EXPERIMENTS", "hub.experiments",
        "The experiment event log: every lifecycle step, keyed by experiment id, never deleted.")
    correlation_lateness: float = _setting(
        "HUB_CORRELATION_LATENESS", 0.25,
        "Seconds a record may precede the experiment event that opens its window (clock skew, delivery order) and still be placed on it; while an experiment is open, each batch waits this long past its newest record, so it adds to breach-to-alert latency.")
    topic_rollups: str = _setting(
        "HUB_TOPIC_ROLLUPS", "hub.rollups",
        "Per-second partial aggregates of stored records, keyed by experiment, that the abort judge reads.")
    topic_alerts: str = _setting(
        "HUB_TOPIC_ALERTS", "hub.alerts", "Alerts (firing, resolved) and the outcome of each action taken on them.")
    topic_pairs: str = _setting(
        "HUB_TOPIC_PAIRS", "hub.pairs", "Shadow pairs: one comparison of a request's primary and shadow legs.")
    judge_horizon: float = _setting(
        "HUB_JUDGE_HORIZON", 900.0,
        "Seconds of rollups a restarted judge replays to rebuild its windows (longer than any rule's window plus hold).")
    judge_idle: float = _setting(
        "HUB_JUDGE_IDLE_SECONDS", 5.0,
        "A firing alert resolves only at an event-time second every partition still delivering the experiment's data has reached; a partition this many seconds behind the newest counts as idle and is not waited for.")
    room_recent_hours: float = _setting(
        "HUB_ROOM_RECENT_HOURS", 6.0,
        "Hours an ended (aborted or completed) experiment stays in the gameday-room overview, with its alerts and abort reason, beside the running ones.")
    halt_webhooks: str = _setting(
        "HUB_HALT_WEBHOOKS", "",
        "Comma-separated URLs called (POST, JSON, retried) when an abort rule of any experiment fires, only when HUB_HALT_WEBHOOKS_ALL_EXPERIMENTS is on; an experiment's own halt targets are declared in its definition (halt).")
    halt_webhooks_all_experiments: bool = _setting(
        "HUB_HALT_WEBHOOKS_ALL_EXPERIMENTS", False,
        "Call the global HUB_HALT_WEBHOOKS for every experiment's abort besides its own halt targets (off: one experiment's rule halts only the targets its definition declares).")
    alertmanager_url: str = _setting(
        "HUB_ALERTMANAGER_URL", "", "Alertmanager base URL; alerts are posted to <url>/api/v2/alerts.")
    chat_webhook: str = _setting(
        "HUB_CHAT_WEBHOOK", "", "Incoming-webhook URL of a chat room (Slack-compatible {\"text\": ...}) for alert messages.")
    topic_spans: str = _setting(
        "HUB_TOPIC_SPANS", "otlp_spans", "Topic of OTLP trace exports (the Collector's Kafka exporter default).")
    topic_metrics: str = _setting(
        "HUB_TOPIC_METRICS", "otlp_metrics", "Topic of OTLP metric exports.")
    topic_logs: str = _setting(
        "HUB_TOPIC_LOGS", "otlp_logs", "Topic of OTLP log exports.")
    otlp_encoding: str = _setting(
        "HUB_OTLP_ENCODING", "auto",
        "Encoding on the OTLP topics: otlp_proto, otlp_json, or auto (JSON when a record starts with '{').")
    raw_topic_retention_hours: float = _setting(
        "HUB_RAW_TOPIC_RETENTION_HOURS", 24.0,
        "Retention set on the raw telemetry topics (requests, pairs, OTLP spans/logs/metrics) and the rollup topic when they are created or the worker starts; they hold data not yet redacted, and replay reaches back only this far; 0 leaves the broker's default.")
    redaction_policy: str = _setting(
        "HUB_REDACTION_POLICY", "",
        "YAML redaction policy applied at ingest before anything is stored (docs/redaction.md); empty applies the built-in default policy.")
    redaction_key: str = _setting(
        "HUB_REDACTION_KEY", "",
        "Secret keying the digests of masked ids ([REDACTED:id:<digest>]), shared by every worker so one id keeps one digest across workers and restarts; empty: generated into <home>/redaction-key (0600) on first use.")
    topic_dlq: str = _setting(
        "HUB_TOPIC_DLQ", "hub.dlq", "Dead-letter topic: records that could not be decoded, with the reason.")

    app_id: str = _setting(
        "HUB_APP_ID", "gameday-hub",
        "Faust application id: the consumer group of the workers.")
    session_timeout: float = _setting(
        "HUB_SESSION_TIMEOUT", 10.0,
        "Seconds without a heartbeat after which a worker's partitions move to the others (a crashed worker's too).")
    sink_batch_max: int = _setting(
        "HUB_SINK_BATCH_MAX", 20000,
        "Most records the sink writes to ClickHouse in one insert.")
    sink_batch_seconds: float = _setting(
        "HUB_SINK_BATCH_SECONDS", 0.25,
        "Longest a record waits in the sink's buffer before its batch is written (the rows of a batch "
        "are inserted while the next one gathers, so short batches cost little).")
    max_record_bytes: int = _setting(
        "HUB_MAX_RECORD_BYTES", 1_000_000,
        "Records larger than this are refused to the dead-letter topic as oversized.")
    max_nesting_depth: int = _setting(
        "HUB_MAX_NESTING_DEPTH", 64,
        "Records (and HTTP events) nested deeper than this many levels (JSON arrays/objects, or nested "
        "OTLP array/key-value attribute values) are refused to the dead-letter topic as too deeply nested.")
    max_future_seconds: int = _setting(
        "HUB_MAX_FUTURE_SECONDS", 86_400,
        "Records with an event time more than this many seconds ahead of the worker's clock are refused "
        "to the dead-letter topic as timestamp out of range.")
    min_event_year: int = _setting(
        "HUB_MIN_EVENT_YEAR", 2000,
        "Records with an event time before January 1 of this year (UTC) are refused to the dead-letter "
        "topic as timestamp out of range.")
    max_text_bytes: int = _setting(
        "HUB_MAX_TEXT_BYTES", 65_536,
        "Longest text field (a note, an abort reason, a summary, any string of an HTTP command's JSON body) "
        "the HTTP API accepts, in UTF-8 bytes; a longer one is refused with 413.")
    dead_letter_max_bytes: int = _setting(
        "HUB_DEAD_LETTER_MAX_BYTES", 786_432,
        "Largest dead letter published; a larger one carries a truncated payload with the original's length, "
        "sha256 and source offset (keep it below the dead-letter topic's max.message.bytes, 1 MiB by default).")
    health_max_lag: int = _setting(
        "HUB_HEALTH_MAX_LAG", 200_000,
        "Records a sink's partition may be behind its topic's end before /health says degraded and /ready fails.")

    http_host: str = _setting(
        "HUB_HTTP_HOST", "127.0.0.1", "Address the hub's HTTP endpoint listens on.")
    http_port: int = _setting(
        "HUB_HTTP_PORT", 8765, "Port of the hub's HTTP endpoint (queries, health).")
    api_token: str = _setting(
        "HUB_API_TOKEN", "",
        "Bearer token the HTTP endpoint requires (except /health and /ready); empty asks for none, so keep HUB_HTTP_HOST on loopback then.")
    ingest_token: str = _setting(
        "HUB_INGEST_TOKEN", "",
        "Bearer token for POST /v1/events only (emitters); HUB_API_TOKEN is accepted there too.")
    sql_max_rows: int = _setting(
        "HUB_SQL_MAX_ROWS", 10_000, "Most rows an ad-hoc SQL answer returns; beyond that it is cut and says so.")
    sql_max_seconds: float = _setting(
        "HUB_SQL_MAX_SECONDS", 30.0, "Longest an ad-hoc SQL query may run.")
    sql_max_memory: int = _setting(
        "HUB_SQL_MAX_MEMORY", 1 << 30,
        "Most memory (bytes) the engine may use for one ad-hoc SQL query, which is refused beyond it; its answer may be at most a 32nd of it.")
    replay_max_seconds: float = _setting(
        "HUB_REPLAY_MAX_SECONDS", 3600.0,
        "Longest `hub replay` may take to read every topic to its end; past it the rebuild is dropped and the database stays as it was.")
    ready_timeout: float = _setting(
        "HUB_READY_TIMEOUT", 180.0,
        "Seconds `hub up` waits for the whole stack to be ready.")
    log_level: str = _setting(
        "HUB_LOG_LEVEL", "info", "Log level of the worker and broker supervisor (debug, info, warning, error).")
    actor: str = _setting(
        "HUB_ACTOR", "",
        "Who is acting, recorded on the experiment events the CLI writes (--actor wins); empty: user@host.")

    grafana_url: str = _setting(
        "HUB_GRAFANA_URL", "",
        "Base URL of Grafana (http://grafana:3000); `hub dashboards push` and the worker's live annotations need it.")
    grafana_token: str = _setting(
        "HUB_GRAFANA_TOKEN", "", "Service-account token for the Grafana HTTP API (Bearer).")
    grafana_folder: str = _setting(
        "HUB_GRAFANA_FOLDER", "Gamedays", "Title of the Grafana folder that holds the generated dashboards.")
    grafana_folder_uid: str = _setting(
        "HUB_GRAFANA_FOLDER_UID", "gameday-hub", "Uid of that folder.")
    grafana_datasource: str = _setting(
        "HUB_GRAFANA_DATASOURCE", "gameday-hub ClickHouse", "Name of the ClickHouse datasource the dashboards query.")
    grafana_datasource_uid: str = _setting(
        "HUB_GRAFANA_DATASOURCE_UID", "gameday-hub-clickhouse",
        "Uid of that datasource (the dashboards refer to it by uid).")
    grafana_refresh: str = _setting(
        "HUB_GRAFANA_REFRESH", "5s", "Auto-refresh of the generated dashboards (5s or 10s suit a live gameday room).")
    grafana_clickhouse_host: str = _setting(
        "HUB_GRAFANA_CLICKHOUSE_HOST", "",
        "ClickHouse host as Grafana reaches it (empty: the host of HUB_CLICKHOUSE_URL, else HUB_STORE_HOST, where the embedded store is served).")
    grafana_clickhouse_port: str = _setting(
        "HUB_GRAFANA_CLICKHOUSE_PORT", "",
        "ClickHouse port as Grafana reaches it (empty: the port of HUB_CLICKHOUSE_URL, else HUB_STORE_PORT).")
    grafana_clickhouse_protocol: str = _setting(
        "HUB_GRAFANA_CLICKHOUSE_PROTOCOL", "http", "Protocol of the datasource: http or native.")
    grafana_clickhouse_user: str = _setting(
        "HUB_GRAFANA_CLICKHOUSE_USER", "hub_grafana",
        "ClickHouse user of the datasource: a read-only user (`hub dashboards datasource-user`).")
    grafana_clickhouse_password: str = _setting(
        "HUB_GRAFANA_CLICKHOUSE_PASSWORD", "",
        "Its password (sent to Grafana as secureJsonData, never written to exported files).")
    grafana_annotation_max_age: float = _setting(
        "HUB_GRAFANA_ANNOTATION_MAX_AGE", 600.0,
        "Seconds: older lifecycle events (a worker replaying the log at start) get no live annotation.")

    # ---- derived paths -------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def logs_dir(self) -> Path:
        return self.home_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home_dir / "run"

    @property
    def clickhouse_path(self) -> Path:
        return self.home_dir / "clickhouse"

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{self.clickhouse_path}"

    @property
    def embedded_clickhouse(self) -> bool:
        return not self.clickhouse_url

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    def with_overrides(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _coerce(name: str, kind: Any, raw: str) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
        if kind_name == "Path":
            return Path(raw)
        if kind_name == "bool":
            word = raw.strip().lower()
            if word in ("1", "true", "yes", "on"):
                return True
            if word in ("", "0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return raw
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind_name}") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the file (if any) and the environment."""
    env = dict(os.environ if environ is None else environ)
    fields = {f.metadata["env"]: f for f in dataclasses.fields(Settings)}
    home = Path(env.get("HUB_HOME", "~/.gameday-hub")).expanduser()
    file_name = env.get("HUB_CONFIG_FILE") or str(home / "hub.env")
    merged: dict[str, str] = {}
    file_path = Path(file_name).expanduser()
    if file_path.is_file():
        merged.update(_read_env_file(file_path))
    elif env.get("HUB_CONFIG_FILE"):
        raise ConfigError(f"HUB_CONFIG_FILE={file_name} does not exist")
    merged.update({k: v for k, v in env.items() if k.startswith("HUB_")})
    values: dict[str, Any] = {}
    for name, raw in merged.items():
        f = fields.get(name)
        if f is None:
            continue
        values[f.name] = _coerce(name, f.type, raw)
    return Settings(**values)


def describe() -> list[tuple[str, str, str]]:
    """(env name, default, sentence) for every setting, for docs and `hub config`."""
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append((f.metadata["env"], str(f.default), f.metadata["doc"]))
    return rows
