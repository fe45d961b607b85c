-- Scoring's state: what it knows of each case, and every unit's figures per period.

-- One row per case (room left on each page for in-place updates): the observations the four topics gave (kept so that any
-- order of arrival gives the same row) and, derived from them, who holds the
-- case now and when it was first dispatched, for the reports' lists.
CREATE TABLE case_facts (
    case_id               text PRIMARY KEY,
    registered_at         timestamptz,
    merged_at             timestamptz,
    grid_code             text,
    area_hint             text,
    -- {"dispatches": [[dispatched_at, dispatch_number, department, sign_for, handle], ...],
    --  "acceptances": [instant, ...], "verification_failures": [event id, ...]}
    history               jsonb NOT NULL DEFAULT '{}',
    overdue_at            timestamptz,
    rework_orders         integer NOT NULL DEFAULT 0,
    closed_at             timestamptz,
    handled_at            timestamptz,
    handle_deadline       timestamptz,
    rating                text,
    rated_at              timestamptz,
    rating_event_id       text,
    first_dispatched_at   timestamptz,
    department            text,
    area                  text
) WITH (fillfactor = 80);
CREATE INDEX case_facts_overdue ON case_facts (overdue_at) WHERE overdue_at IS NOT NULL;

-- Per unit and period, the sum of its cases' contributions. Cohort counts
-- (due .. failed_verification_3x) and rebounds on every row; the day's
-- activity (registered .. became_overdue) on day rows. ``dirty`` marks rows
-- changed since the publisher last looked; ``revision`` lets it clear the
-- mark only if nothing changed meanwhile.
CREATE TABLE unit_figures (
    period_type            text NOT NULL,
    period                 text NOT NULL,
    unit_type              text NOT NULL,
    unit_id                text NOT NULL,
    due                    integer NOT NULL DEFAULT 0,
    closed                 integer NOT NULL DEFAULT 0,
    on_time                integer NOT NULL DEFAULT 0,
    overdue                integer NOT NULL DEFAULT 0,
    rework                 integer NOT NULL DEFAULT 0,
    responded              integer NOT NULL DEFAULT 0,
    rated                  integer NOT NULL DEFAULT 0,
    satisfied              integer NOT NULL DEFAULT 0,
    basically_satisfied    integer NOT NULL DEFAULT 0,
    failed_verification_3x integer NOT NULL DEFAULT 0,
    rebounds               integer NOT NULL DEFAULT 0,
    registered             integer NOT NULL DEFAULT 0,
    merged                 integer NOT NULL DEFAULT 0,
    rejected               integer NOT NULL DEFAULT 0,
    closures               integer NOT NULL DEFAULT 0,
    became_overdue         integer NOT NULL DEFAULT 0,
    revision               bigint NOT NULL DEFAULT 1,
    dirty                  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (period_type, period, unit_type, unit_id)
) WITH (fillfactor = 70);  -- room on the page for HOT updates: rows change on every batch
CREATE INDEX unit_figures_dirty ON unit_figures (period_type, period, unit_type) WHERE dirty;

-- Every period that has figures, and when its final scores were published.
CREATE TABLE periods (
    period_type text NOT NULL,
    period      text NOT NULL,
    ends_at     timestamptz NOT NULL,
    closed_at   timestamptz,
    PRIMARY KEY (period_type, period)
);
CREATE INDEX periods_open ON periods (ends_at) WHERE closed_at IS NULL;

-- Bounce-backs (回弹), one per new case that came back, for the reports' lists.
CREATE TABLE rebounds (
    case_id          text PRIMARY KEY,
    previous_case_id text NOT NULL,
    place_key        text NOT NULL,
    count            integer NOT NULL,
    category_code    text NOT NULL,
    grid_code        text NOT NULL,
    department       text NOT NULL,
    area             text NOT NULL,
    bureau_notice    boolean NOT NULL,
    key_problem      boolean NOT NULL,
    raised_at        timestamptz NOT NULL
);
CREATE INDEX rebounds_raised ON rebounds (raised_at);

-- Rejected reports, for the day's intake figures.
CREATE TABLE rejections (
    report_id   text PRIMARY KEY,
    channel     text NOT NULL,
    rejected_at timestamptz NOT NULL
);

-- The last score.published per unit and period: what it said (a digest) and when.
CREATE TABLE published (
    period_type  text NOT NULL,
    period       text NOT NULL,
    unit_type    text NOT NULL,
    unit_id      text NOT NULL,
    digest       text NOT NULL,
    published_at timestamptz NOT NULL,
    final        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (period_type, period, unit_type, unit_id)
);
