-- Bounce-back candidates by place (store.closed_candidates): a new case looks for closed
-- cases of its category in the same cell, at the same asset or within its radius. The
-- category index alone reads every case of the category closed in the window (hundreds
-- in a city, for each registration) to keep the few at the place; these three reach
-- them directly, one per way of being the same place. Only closed cases are indexed.
CREATE INDEX cases_closed_by_cell ON cases (category_code, grid_code, closed_at)
    WHERE closed_at IS NOT NULL;
CREATE INDEX cases_closed_by_asset ON cases (category_code, component_id, closed_at)
    WHERE closed_at IS NOT NULL AND component_id IS NOT NULL;
CREATE INDEX cases_closed_by_spot ON cases (category_code, lat, long, closed_at)
    WHERE closed_at IS NOT NULL;
