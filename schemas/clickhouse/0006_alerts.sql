-- Alerts of the abort judge (firing, resolved) and the outcome of each action taken on them
-- (kind = 'action': the abort event, halt webhooks, Alertmanager, chat), from hub.alerts.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    time               DateTime64(3, 'UTC'),
    kind               LowCardinality(String),
    alert_id           String,
    status             LowCardinality(String),
    experiment_id      String,
    rule               String,
    severity           LowCardinality(String),
    measurement        LowCardinality(String),
    comparison         LowCardinality(String),
    threshold          Float64,
    observed           Nullable(Float64),
    samples            UInt64,
    window_start       Nullable(DateTime64(3, 'UTC')),
    window_end         Nullable(DateTime64(3, 'UTC')),
    top_contributors   String,
    example_request_ids Array(String),
    message            String,
    action             LowCardinality(String),
    url                String,
    ok                 Nullable(Bool),
    status_code        Nullable(UInt16),
    attempts           UInt8,
    error              String
)
ENGINE = MergeTree
ORDER BY (experiment_id, time, alert_id)
SETTINGS non_replicated_deduplication_window = 10000
