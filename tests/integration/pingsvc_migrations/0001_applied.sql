CREATE TABLE applied (
    event_id text PRIMARY KEY,
    n        integer NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
