-- The reliability plumbing every service has in its own schema.

-- Inbox: one row per consumed event id (or poison message position), written in the
-- same transaction as the state change, so a redelivered event is dropped.
CREATE TABLE inbox (
    event_id    text PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Outbox: events to publish, written in the same transaction as the state change.
-- The relay publishes in id order and deletes what the broker acknowledged.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea,
    value         bytea NOT NULL,
    header_keys   text[] NOT NULL DEFAULT '{}',
    header_values bytea[] NOT NULL DEFAULT '{}',
    event_type    text,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
