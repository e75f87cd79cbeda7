-- The fold's verdict on every experiment event, and views that show accepted events only.
-- experiment_events stays the full audit trail: every event that decodes is stored, forged and refused
-- ones too. The sink (hub/experiments/projection.py) sets accepted = 1 for the events the lifecycle
-- fold accepted (the same fold as the registry behind `hub experiment show`), and accepted = 0 with
-- the reason in refusal for the others (a transition the experiment's state does not allow, a
-- sequence already taken, a record keyed by something other than its experiment id, an event
-- delivered again). source_partition and source_offset say where the event is in hub.experiments.
-- Rows stored before this migration keep accepted = 1 and offsets -1: `hub replay` judges them.
-- Placeholder filled by the migration runner: {db}.
ALTER TABLE {db}.experiment_events
    ADD COLUMN IF NOT EXISTS accepted UInt8 DEFAULT 1,
    ADD COLUMN IF NOT EXISTS refusal String DEFAULT '',
    ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1,
    ADD COLUMN IF NOT EXISTS source_offset Int64 DEFAULT -1;

-- The views of 0005_experiment_views.sql again, over accepted events only.
DROP VIEW IF EXISTS {db}.experiments;
DROP VIEW IF EXISTS {db}.experiment_phases;
DROP VIEW IF EXISTS {db}.experiment_faults;
DROP VIEW IF EXISTS {db}.experiment_notes;

-- One row per experiment: its title, status, current phase and times.
CREATE VIEW IF NOT EXISTS {db}.experiments AS
SELECT
    experiment_id,
    argMaxIf(JSONExtractString(payload, 'definition', 'title'), sequence, kind = 'experiment_created') AS title,
    argMaxIf(JSONExtractString(payload, 'definition', 'environment', 'kind'), sequence, kind = 'experiment_created') AS environment,
    argMaxIf(
        multiIf(kind = 'experiment_created', 'draft',
                kind = 'prerequisites_checked',
                    if(arrayAll(r -> JSONExtractBool(r, 'done'), JSONExtractArrayRaw(payload, 'results')), 'ready', 'draft'),
                kind = 'experiment_started', 'running',
                kind = 'experiment_aborted', 'aborted',
                'completed'),
        sequence,
        kind IN ('experiment_created', 'prerequisites_checked', 'experiment_started', 'experiment_aborted', 'experiment_completed')
    ) AS status,
    if(countIf(kind IN ('experiment_aborted', 'experiment_completed')) > 0, '',
       argMaxIf(phase, sequence, kind = 'phase_changed')) AS phase,
    minIf(time, kind = 'experiment_created') AS created_at,
    argMinIf(actor, sequence, kind = 'experiment_created') AS created_by,
    if(countIf(kind = 'experiment_started') > 0, minIf(time, kind = 'experiment_started'), NULL) AS started_at,
    if(countIf(kind IN ('experiment_aborted', 'experiment_completed')) > 0,
       minIf(time, kind IN ('experiment_aborted', 'experiment_completed')), NULL) AS ended_at,
    argMaxIf(JSONExtractString(payload, 'reason'), sequence, kind = 'experiment_aborted') AS abort_reason,
    argMaxIf(JSONExtractString(payload, 'by'), sequence, kind = 'experiment_aborted') AS aborted_by,
    max(sequence) AS version
FROM {db}.experiment_events
WHERE accepted = 1
GROUP BY experiment_id;

-- One row per stretch of a phase: [start, end); end is NULL while the phase lasts.
CREATE VIEW IF NOT EXISTS {db}.experiment_phases AS
SELECT experiment_id, phase, start, if(next_time = toDateTime64(0, 3, 'UTC'), NULL, next_time) AS end
FROM
(
    SELECT
        experiment_id, kind, phase, time AS start,
        leadInFrame(time) OVER (PARTITION BY experiment_id ORDER BY sequence
                                ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS next_time
    FROM {db}.experiment_events
    WHERE accepted = 1 AND kind IN ('phase_changed', 'experiment_aborted', 'experiment_completed')
)
WHERE kind = 'phase_changed';

-- One row per fault: what, on which target, by which injector, active during [start, end).
CREATE VIEW IF NOT EXISTS {db}.experiment_faults AS
SELECT
    i.experiment_id AS experiment_id,
    JSONExtractString(i.payload, 'fault_id') AS fault_id,
    JSONExtractString(i.payload, 'action') AS action,
    JSONExtractString(i.payload, 'target') AS target,
    JSONExtractString(i.payload, 'injector') AS injector,
    JSONExtractRaw(i.payload, 'parameters') AS parameters,
    i.time AS start,
    i.actor AS injected_by,
    if(r.time = toDateTime64(0, 3, 'UTC'), NULL, r.time) AS end,
    r.actor AS removed_by
FROM (SELECT * FROM {db}.experiment_events WHERE accepted = 1 AND kind = 'fault_injected') AS i
LEFT JOIN
(
    SELECT experiment_id, JSONExtractString(payload, 'fault_id') AS fault_id, time, actor
    FROM {db}.experiment_events
    WHERE accepted = 1 AND kind = 'fault_removed'
) AS r
ON i.experiment_id = r.experiment_id AND JSONExtractString(i.payload, 'fault_id') = r.fault_id;

-- Every observation and surprise, with the phase it was written in.
CREATE VIEW IF NOT EXISTS {db}.experiment_notes AS
SELECT
    e.experiment_id AS experiment_id,
    JSONExtractString(e.payload, 'note_id') AS note_id,
    JSONExtractString(e.payload, 'note_kind') AS note_kind,
    JSONExtractString(e.payload, 'text') AS text,
    JSONExtractString(e.payload, 'expected') AS expected,
    JSONExtractString(e.payload, 'actual') AS actual,
    JSONExtract(e.payload, 'tags', 'Array(String)') AS tags,
    e.actor AS actor,
    e.time AS time
FROM {db}.experiment_events AS e
WHERE e.accepted = 1 AND e.kind = 'note_added';

-- The audit view: every event the fold refused, with the reason and its place in the log.
CREATE VIEW IF NOT EXISTS {db}.experiment_refused_events AS
SELECT experiment_id, sequence, event_id, kind, time, actor, refusal, source_partition, source_offset, payload
FROM {db}.experiment_events
WHERE accepted = 0
