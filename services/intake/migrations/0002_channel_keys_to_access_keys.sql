-- Intake's channel keys move to the shared access_keys table (shared/0002), which
-- every service now authenticates against; a revoked key stays revoked.
INSERT INTO access_keys (key_hash, kind, principal_id, label, revoked, created_at, revoked_at)
SELECT key_hash, 'channel', channel, label, revoked, created_at, revoked_at FROM api_keys
ON CONFLICT (key_hash) DO NOTHING;
DROP TABLE api_keys;
