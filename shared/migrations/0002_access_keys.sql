-- API keys of the HTTP APIs, one table per service schema: only a SHA-256 of each key is
-- kept. A key names its principal: a channel (reports), a department (feedback on the
-- cases it holds) or a centre (supervision/command centre: verification, call-backs,
-- manual dispatch). Revoking is a flag, so the record of who had a key stays.
CREATE TABLE access_keys (
    key_hash     text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('channel', 'department', 'centre')),
    principal_id text NOT NULL,
    label        text NOT NULL DEFAULT '',
    revoked      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
