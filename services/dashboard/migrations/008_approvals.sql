-- Where each county's year-end approval stands (issue 13), learned from the approval.* events on the
-- assessment topic with the rule in contracts/approval.py.
CREATE TABLE approvals (
    county_code text NOT NULL,
    year integer NOT NULL,
    status text NOT NULL,
    submission integer NOT NULL,
    acted_by text NOT NULL,
    acted_at timestamptz NOT NULL,
    reason text,
    PRIMARY KEY (county_code, year)
);
