-- An alert the judge raised at a second outside the experiment's run (before its start, or after
-- its end plus abort_grace): stored for the record, nothing was done about it. And how long each
-- action took (a halt target's answer, in milliseconds).
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS outside_run Bool DEFAULT false;
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS latency_ms Nullable(Float64)
