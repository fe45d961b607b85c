-- Intake's own tables: filed reports (cases and merged duplicates), the case read model,
-- reporters' contacts for call-backs, and the channels' API keys.

-- Every report filed: a new case, or a duplicate merged into its master.
-- (channel, external_id) is the channel's idempotency key: a retried report finds its case here.
CREATE TABLE cases (
    case_id        text PRIMARY KEY,
    report_id      text NOT NULL,
    channel        text NOT NULL,
    external_id    text NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('registered', 'merged')),
    master_case_id text,
    category_code  text NOT NULL,
    grid_code      text NOT NULL,
    area           text NOT NULL,
    -- the point duplicates are searched around: the reported one, or the cell's centre
    site_lat       double precision NOT NULL,
    site_long      double precision NOT NULL,
    reported_at    timestamptz NOT NULL,
    registered_at  timestamptz NOT NULL,
    -- id of the case.registered / case.merged event: the first entry of the case's timeline
    event_id       text NOT NULL,
    -- what a merged duplicate's channel reported, without the reporter's contact
    -- (a registered case's event already carries all of it)
    report         json,
    -- the case.registered / case.merged data as published; json, not jsonb: it is
    -- written thousands of times a second and only ever read back whole
    detail         json NOT NULL
);
CREATE UNIQUE INDEX cases_report_key ON cases (channel, external_id);
CREATE INDEX cases_duplicates_of ON cases (master_case_id) WHERE master_case_id IS NOT NULL;
CREATE INDEX cases_reported_at ON cases (reported_at);

-- Cases that can still attract duplicates: registered (never merged) cases that are open
-- or closed within the longest duplicate window. Registration searches here, by category
-- and bounding box, so the search stays as small as the city's open work however long
-- its history grows; a background job prunes what has aged out.
CREATE TABLE duplicate_masters (
    case_id       text PRIMARY KEY,
    category_code text NOT NULL,
    site_lat      double precision NOT NULL,
    site_long     double precision NOT NULL,
    registered_at timestamptz NOT NULL,
    closed_at     timestamptz
);
CREATE INDEX duplicate_masters_near ON duplicate_masters (category_code, site_lat, site_long);
CREATE INDEX duplicate_masters_closed ON duplicate_masters (closed_at)
    WHERE closed_at IS NOT NULL;

-- The read model: a case's timeline (every event intake has seen about it from the other
-- topics or its own feedback API, by event id; the registration itself is the cases row)
-- and the state folded from it, once the case has more than its registration.
CREATE TABLE case_timeline (
    event_id    text PRIMARY KEY,
    case_id     text NOT NULL,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    source      text NOT NULL,
    data        jsonb NOT NULL
);
CREATE INDEX case_timeline_by_case ON case_timeline (case_id, occurred_at);

-- No foreign key to cases: a replay may bring a case's dispatch before its registration.
CREATE TABLE case_progress (
    case_id    text PRIMARY KEY,
    status     text NOT NULL,
    is_open    boolean NOT NULL,
    department text,
    closed_at  timestamptz,
    updated_at timestamptz,
    state      jsonb NOT NULL
);

-- Reporters' contacts, for call-backs only: never published (events carry reporter_ref).
CREATE TABLE case_contacts (
    case_id      text PRIMARY KEY,
    reporter_ref text,
    name         text,
    phone        text,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_contacts_by_reporter ON case_contacts (reporter_ref);

-- API keys of the HTTP channels (Open311 clients): only a SHA-256 of each key is kept.
CREATE TABLE api_keys (
    key_hash   text PRIMARY KEY,
    channel    text NOT NULL,
    label      text NOT NULL DEFAULT '',
    revoked    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
