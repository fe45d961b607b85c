-- Dispatch's state: each case as it stands, the human dispatcher's queue, and events
-- that arrived before the case they concern.

-- One row per case: where it is, who holds it, until when, and what it has been through.
CREATE TABLE cases (
    case_id           text PRIMARY KEY,
    category_code     text NOT NULL,
    kind              text NOT NULL,
    grid_code         text NOT NULL,
    street            text NOT NULL,
    area              text NOT NULL,
    area_class        text NOT NULL,
    urgency           text NOT NULL,
    tier              text NOT NULL,
    registered_at     timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('dispatched', 'escalated')),
    candidates        text[] NOT NULL,
    co_departments    text[] NOT NULL,
    rule_id           text NOT NULL,
    rule              text NOT NULL,
    department        text,
    last_department   text,
    returned_by       text[] NOT NULL,
    returns           integer NOT NULL,
    dispatch_number   integer NOT NULL,
    rework_count      integer NOT NULL,
    is_rework         boolean NOT NULL,
    extension_total   interval NOT NULL,
    dispatched_at     timestamptz,
    sign_for_deadline timestamptz,
    handle_deadline   timestamptz,
    verify_limit      interval,
    clock             text,
    handle_clock      text NOT NULL,
    answered          text[] NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cases_by_department ON cases (department) WHERE status = 'dispatched';

-- The human dispatcher's queue (逐级上报): cases no rule can place any more.
CREATE TABLE escalated (
    case_id           text PRIMARY KEY,
    reason            text NOT NULL,
    detail            text NOT NULL,
    returns           integer NOT NULL,
    last_department   text,
    tried_departments text[] NOT NULL,
    area              text NOT NULL,
    category_code     text NOT NULL,
    grid_code         text NOT NULL,
    urgency           text NOT NULL,
    escalated_at      timestamptz NOT NULL
);
CREATE INDEX escalated_in_order ON escalated (escalated_at, case_id);

-- Follow-up events (returned, rework ordered, extension asked or granted) that arrived
-- before their case; applied in event-time order once the case is registered.
CREATE TABLE pending (
    event_id   text PRIMARY KEY,
    case_id    text NOT NULL,
    event_type text NOT NULL,
    event_time timestamptz NOT NULL,
    envelope   bytea NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX pending_by_case ON pending (case_id, event_time);
