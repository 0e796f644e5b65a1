-- Coverage (全覆盖率) asks, for every village of a region, whether an advisor is assigned today: by
-- village, which the primary key (advisor first) cannot answer. Without this index a province's answer
-- could take seconds when the planner chose a nested loop (bench/README.md).
CREATE INDEX assignments_by_village ON assignments (village_code, term_start);
