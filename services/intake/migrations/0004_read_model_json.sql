-- The read model's documents become json, not jsonb: each case event writes a timeline entry
-- and its case's state, and jsonb parsed and re-encoded both on every write (about a quarter of
-- the read model's database time) for documents only ever read back whole, by this service.
-- (The timeline endpoint keeps answering in jsonb's key order: see store.case_timeline.)
ALTER TABLE case_timeline ALTER COLUMN data TYPE json;
ALTER TABLE case_progress ALTER COLUMN state TYPE json;
