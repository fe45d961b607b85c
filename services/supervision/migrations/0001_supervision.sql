-- Supervision's state: cases as it follows them, their armed timers, bounce-backs.

-- One row per case supervision has heard of (registered, dispatched or fed back),
-- with the instants it decides by; see services/supervision/domain/case.py.
CREATE TABLE cases (
    case_id                    text PRIMARY KEY,
    -- the place, from case.registered (or what a dispatch repeats of it)
    category_code              text,
    grid_code                  text,
    component_id               text,
    lat                        double precision,
    long                       double precision,
    place_area                 text,
    registered_at              timestamptz,
    place_key                  text,
    rebound_of                 text,
    -- the dispatch in force
    dispatch_number            integer,
    department                 text,
    area                       text,
    dispatched_at              timestamptz,
    verify_limit               interval,
    clock                      text,
    dispatch_category          text,
    dispatch_grid              text,
    first_dispatched_at        timestamptz,
    escalated_at               timestamptz,
    sign_for_due               timestamptz,
    warn_due                   timestamptz,
    handle_due                 timestamptz,
    -- what happened on the ground
    accepted_at                timestamptz,
    handled_at                 timestamptz,
    handle_deadline_at_handled timestamptz,
    verify_due                 timestamptz,
    verified_at                timestamptz,
    failed_at                  timestamptz,
    failure_reason             text,
    rework_pending             boolean NOT NULL DEFAULT false,
    rework_count               integer NOT NULL DEFAULT 0,
    -- lights shown for the dispatch in force
    sign_for_overdue_at        timestamptz,
    warned_at                  timestamptz,
    handle_overdue_at          timestamptz,
    verify_overdue_at          timestamptz,
    notice_level               integer NOT NULL DEFAULT 0,
    next_notice_due            timestamptz,
    -- closing, look-back, parking
    closed_at                  timestamptz,
    lookback_due               timestamptz,
    lookback_done              boolean NOT NULL DEFAULT false,
    parked_at                  timestamptz,
    parked_total               interval NOT NULL DEFAULT '0',
    -- derived from the above on every save, for the overdue list
    overdue_timer              text,
    overdue_deadline           timestamptz,
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- Bounce-back candidates: closed cases of a category, recent first.
CREATE INDEX cases_closed_by_category ON cases (category_code, closed_at)
    WHERE closed_at IS NOT NULL;
-- The overdue list (GET /v1/overdue) and the overdue-by-department gauge.
CREATE INDEX cases_overdue ON cases (department, overdue_deadline)
    WHERE overdue_timer IS NOT NULL;

-- Armed timers: a materialised view of each case's state (domain.timers.armed_timers),
-- kept so the scheduler finds the next due timer by index and instances can claim them
-- with FOR UPDATE SKIP LOCKED. A paused timer belongs to a parked case.
CREATE TABLE timers (
    case_id         text NOT NULL,
    kind            text NOT NULL,
    level           smallint NOT NULL DEFAULT 0,
    due_at          timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    dispatch_number integer NOT NULL,
    paused          boolean NOT NULL DEFAULT false,
    armed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, kind, level)
);
CREATE INDEX timers_due ON timers (due_at) WHERE NOT paused;

-- Every bounce-back (回弹) raised, by place.
CREATE TABLE rebounds (
    case_id          text PRIMARY KEY,
    place_key        text NOT NULL,
    previous_case_id text NOT NULL,
    category_code    text NOT NULL,
    grid_code        text NOT NULL,
    area             text NOT NULL,
    department       text NOT NULL,
    count            integer NOT NULL,
    bureau_notice    boolean NOT NULL,
    key_problem      boolean NOT NULL,
    quarter          text NOT NULL,
    rebounded_at     timestamptz NOT NULL
);
CREATE INDEX rebounds_by_place ON rebounds (place_key, rebounded_at);

-- The key-problem list (重点问题数据库): places with repeated bounce-backs in a quarter.
CREATE TABLE key_problems (
    place_key        text NOT NULL,
    quarter          text NOT NULL,
    category_code    text NOT NULL,
    grid_code        text NOT NULL,
    area             text NOT NULL,
    rebounds         integer NOT NULL,
    listed_at        timestamptz NOT NULL,
    last_rebound_at  timestamptz NOT NULL,
    PRIMARY KEY (place_key, quarter)
);
