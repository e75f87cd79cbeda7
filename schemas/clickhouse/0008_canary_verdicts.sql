-- Canary judgments (hub canary judge): canary vs baseline (primary legs) per route and metric.
-- latency: Mann-Whitney U, effect Cliff's delta; error_rate: two-proportion z test, effect Cohen's h.
-- Insert columns in hub.shadow.canary.VERDICT_COLUMNS order.
CREATE TABLE IF NOT EXISTS {db}.canary_verdicts
(
    judged_at         DateTime64(3, 'UTC'),
    experiment_id     String,
    route             LowCardinality(String),
    metric            LowCardinality(String),
    verdict           LowCardinality(String),
    confidence        Float64,
    p_value           Float64,
    effect_size       Float64,
    effect_kind       LowCardinality(String),
    canary_samples    UInt64,
    baseline_samples  UInt64,
    canary_value      Float64,
    baseline_value    Float64,
    canary_backend    String,
    baseline_backend  String
)
ENGINE = MergeTree
ORDER BY (experiment_id, judged_at, route, metric)
SETTINGS non_replicated_deduplication_window = 10000
