-- `figures` as wide rows (issue 17): one row per region, period and slot (kafka_partition) with a column per
-- metric, instead of a row per metric. A write upserts ~1 row where it upserted ~8 (a benchmark load's table
-- from 522,995 rows to 76,693, bench/README.md); a row whose every metric is 0 is deleted, as a metric's row
-- was, so the table stays the same however the events were cut into batches. The columns are the closed set
-- `services.dashboard.rules.METRICS` (the kinds, topics, channels, severities and grades of contracts, the
-- legacy `subsidy_yuan`, `active_advisors`): a metric without a column stops the migration rather than be
-- lost. Existing rows are carried over; a row left at 0 (before zeros were deleted) is not, as in a rebuild.
DO $$
DECLARE
    unknown text;
BEGIN
    SELECT min(metric) INTO unknown FROM figures WHERE metric NOT IN (
    'consultations', 'consultation_person_times', 'consultations_topic_land', 'consultations_topic_marriage_family',
    'consultations_topic_labour', 'consultations_topic_contract_debt', 'consultations_topic_neighbour_property', 'consultations_topic_inheritance',
    'consultations_topic_personal_injury', 'consultations_topic_administrative', 'consultations_topic_other', 'consultations_channel_on_site',
    'consultations_channel_phone', 'consultations_channel_wechat', 'consultations_channel_online', 'consultations_channel_hotline_12348',
    'mediations', 'mediations_resolved', 'mediations_major_or_difficult', 'mediations_petition_backlog',
    'mediations_major_or_backlog', 'lectures', 'lecture_attendees', 'lectures_evening_or_holiday',
    'legal_aid_referral', 'legal_aid_application_assisted', 'legal_aid_case_represented', 'documents_village_rules',
    'documents_contract_review', 'documents_legal_document_drafted', 'documents_legal_opinion', 'visits',
    'on_site_minutes', 'risk_reports', 'risk_reports_low', 'risk_reports_medium',
    'risk_reports_high', 'feedback', 'feedback_score_sum', 'village_months_closed',
    'village_months_met', 'graded', 'grades_excellent', 'grades_good',
    'grades_qualified', 'grades_unqualified', 'grades_violation', 'subsidy_fen',
    'subsidy_yuan', 'active_advisors');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'figures holds the metric %, which migration 014 has no column for', unknown
            USING HINT = 'add its column to 014_wide_figures.sql before it is applied, or rebuild the dashboard';
    END IF;
END $$;

ALTER TABLE figures RENAME TO figures_by_metric;
ALTER TABLE figures_by_metric RENAME CONSTRAINT figures_pkey TO figures_by_metric_pkey;

CREATE TABLE figures (
    region_code text NOT NULL,
    period text NOT NULL,
    kafka_partition integer NOT NULL,
    consultations double precision NOT NULL DEFAULT 0,
    consultation_person_times double precision NOT NULL DEFAULT 0,
    consultations_topic_land double precision NOT NULL DEFAULT 0,
    consultations_topic_marriage_family double precision NOT NULL DEFAULT 0,
    consultations_topic_labour double precision NOT NULL DEFAULT 0,
    consultations_topic_contract_debt double precision NOT NULL DEFAULT 0,
    consultations_topic_neighbour_property double precision NOT NULL DEFAULT 0,
    consultations_topic_inheritance double precision NOT NULL DEFAULT 0,
    consultations_topic_personal_injury double precision NOT NULL DEFAULT 0,
    consultations_topic_administrative double precision NOT NULL DEFAULT 0,
    consultations_topic_other double precision NOT NULL DEFAULT 0,
    consultations_channel_on_site double precision NOT NULL DEFAULT 0,
    consultations_channel_phone double precision NOT NULL DEFAULT 0,
    consultations_channel_wechat double precision NOT NULL DEFAULT 0,
    consultations_channel_online double precision NOT NULL DEFAULT 0,
    consultations_channel_hotline_12348 double precision NOT NULL DEFAULT 0,
    mediations double precision NOT NULL DEFAULT 0,
    mediations_resolved double precision NOT NULL DEFAULT 0,
    mediations_major_or_difficult double precision NOT NULL DEFAULT 0,
    mediations_petition_backlog double precision NOT NULL DEFAULT 0,
    mediations_major_or_backlog double precision NOT NULL DEFAULT 0,
    lectures double precision NOT NULL DEFAULT 0,
    lecture_attendees double precision NOT NULL DEFAULT 0,
    lectures_evening_or_holiday double precision NOT NULL DEFAULT 0,
    legal_aid_referral double precision NOT NULL DEFAULT 0,
    legal_aid_application_assisted double precision NOT NULL DEFAULT 0,
    legal_aid_case_represented double precision NOT NULL DEFAULT 0,
    documents_village_rules double precision NOT NULL DEFAULT 0,
    documents_contract_review double precision NOT NULL DEFAULT 0,
    documents_legal_document_drafted double precision NOT NULL DEFAULT 0,
    documents_legal_opinion double precision NOT NULL DEFAULT 0,
    visits double precision NOT NULL DEFAULT 0,
    on_site_minutes double precision NOT NULL DEFAULT 0,
    risk_reports double precision NOT NULL DEFAULT 0,
    risk_reports_low double precision NOT NULL DEFAULT 0,
    risk_reports_medium double precision NOT NULL DEFAULT 0,
    risk_reports_high double precision NOT NULL DEFAULT 0,
    feedback double precision NOT NULL DEFAULT 0,
    feedback_score_sum double precision NOT NULL DEFAULT 0,
    village_months_closed double precision NOT NULL DEFAULT 0,
    village_months_met double precision NOT NULL DEFAULT 0,
    graded double precision NOT NULL DEFAULT 0,
    grades_excellent double precision NOT NULL DEFAULT 0,
    grades_good double precision NOT NULL DEFAULT 0,
    grades_qualified double precision NOT NULL DEFAULT 0,
    grades_unqualified double precision NOT NULL DEFAULT 0,
    grades_violation double precision NOT NULL DEFAULT 0,
    subsidy_fen double precision NOT NULL DEFAULT 0,
    subsidy_yuan double precision NOT NULL DEFAULT 0,
    active_advisors double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (region_code, period, kafka_partition)
);

INSERT INTO figures (region_code, period, kafka_partition,
                     consultations, consultation_person_times, consultations_topic_land, consultations_topic_marriage_family,
                     consultations_topic_labour, consultations_topic_contract_debt, consultations_topic_neighbour_property, consultations_topic_inheritance,
                     consultations_topic_personal_injury, consultations_topic_administrative, consultations_topic_other, consultations_channel_on_site,
                     consultations_channel_phone, consultations_channel_wechat, consultations_channel_online, consultations_channel_hotline_12348,
                     mediations, mediations_resolved, mediations_major_or_difficult, mediations_petition_backlog,
                     mediations_major_or_backlog, lectures, lecture_attendees, lectures_evening_or_holiday,
                     legal_aid_referral, legal_aid_application_assisted, legal_aid_case_represented, documents_village_rules,
                     documents_contract_review, documents_legal_document_drafted, documents_legal_opinion, visits,
                     on_site_minutes, risk_reports, risk_reports_low, risk_reports_medium,
                     risk_reports_high, feedback, feedback_score_sum, village_months_closed,
                     village_months_met, graded, grades_excellent, grades_good,
                     grades_qualified, grades_unqualified, grades_violation, subsidy_fen,
                     subsidy_yuan, active_advisors)
SELECT region_code, period, kafka_partition,
       coalesce(sum(value) FILTER (WHERE metric = 'consultations'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultation_person_times'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_land'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_marriage_family'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_labour'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_contract_debt'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_neighbour_property'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_inheritance'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_personal_injury'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_administrative'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_topic_other'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_channel_on_site'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_channel_phone'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_channel_wechat'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_channel_online'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'consultations_channel_hotline_12348'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'mediations'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'mediations_resolved'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'mediations_major_or_difficult'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'mediations_petition_backlog'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'mediations_major_or_backlog'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'lectures'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'lecture_attendees'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'lectures_evening_or_holiday'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'legal_aid_referral'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'legal_aid_application_assisted'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'legal_aid_case_represented'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'documents_village_rules'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'documents_contract_review'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'documents_legal_document_drafted'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'documents_legal_opinion'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'visits'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'on_site_minutes'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'risk_reports'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'risk_reports_low'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'risk_reports_medium'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'risk_reports_high'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'feedback'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'feedback_score_sum'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'village_months_closed'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'village_months_met'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'graded'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'grades_excellent'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'grades_good'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'grades_qualified'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'grades_unqualified'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'grades_violation'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'subsidy_fen'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'subsidy_yuan'), 0),
       coalesce(sum(value) FILTER (WHERE metric = 'active_advisors'), 0)
FROM figures_by_metric
GROUP BY region_code, period, kafka_partition
HAVING bool_or(value <> 0)
ORDER BY region_code, period, kafka_partition;

DROP TABLE figures_by_metric;
