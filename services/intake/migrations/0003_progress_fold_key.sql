-- The read model folds incrementally: with a case's state, where it stands in the timeline.
-- The sort key of the last entry folded into ``state`` is (updated_at, last_step, last_event_id);
-- a new event sorting after it is stepped over from ``state``, any other has the whole
-- timeline folded again. Rows saved before this migration have no key: their next event
-- takes the whole fold, which saves one.
ALTER TABLE case_progress ADD COLUMN last_step smallint;
ALTER TABLE case_progress ADD COLUMN last_event_id text;
