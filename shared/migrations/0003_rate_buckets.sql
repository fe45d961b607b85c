-- API rate limits: a token bucket per API key (by its hash), in the database so that every
-- replica of the service draws on the same one (shared/ratelimit.py). ``allowed``: whether
-- the request that last touched the bucket took a token.
CREATE TABLE rate_buckets (
    key_hash    text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL,
    allowed     boolean NOT NULL
);
