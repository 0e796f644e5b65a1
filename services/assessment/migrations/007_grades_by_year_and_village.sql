-- A region's grades of a year (the table a county bureau pays from, the year-end approval's computed grades,
-- the counties with grades) were read with a prefix LIKE on the village code and no index to serve it: every
-- revision of every year of the country scanned (issue 17). The year first, then the code's range
-- (plumbing.postgres.code_within_sql), in the order the reads want the rows: the latest revision of each
-- (village, advisor) first.
CREATE INDEX grades_by_year_and_village ON grades (year, village_code, advisor_id, revision DESC);
