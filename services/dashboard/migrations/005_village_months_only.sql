-- A village keeps its figures per month only; its quarter and year are summed from the months when asked
-- (queries.figures). Two rows in three at the level with the most rows are no longer written
-- (bench/README.md). What is counted per year or distinctly stays: grades, subsidies, active advisors.
DELETE FROM figures
WHERE length(region_code) = 12
  AND period !~ '^\d{4}-\d{2}$'
  AND metric NOT IN ('graded', 'subsidy_yuan', 'active_advisors')
  AND metric NOT LIKE 'grades\_%';
