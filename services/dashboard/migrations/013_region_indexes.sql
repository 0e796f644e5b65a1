-- Two reads of `regions` that no index served, each a scan of every region, which the national level made
-- the country's 680,000 (issue 17): the provinces, the country's children, on every question put to the
-- country (p99 25.8 ms against 8.7 ms for a province with a tenth of the regions stored), and the merged
-- villages, read in every batch of records the projection applies. Both are a handful of rows.
CREATE INDEX regions_provinces ON regions (code) WHERE level = 'province';
CREATE INDEX regions_merged ON regions (code) WHERE successor_code IS NOT NULL;
