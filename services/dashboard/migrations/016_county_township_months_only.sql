-- A county and a township keep their figures of what has a month per month only, as a village does since
-- migration 005 (issue 17): their quarter and year are summed from the months when asked
-- (`queries.figures`, `rules.months_only`). A record wrote 16 rows of `figures` (its village's month, and
-- the month, quarter and year of each of the five regions above); it now writes 12. What is counted per
-- year or distinctly stays in the quarter's and the year's rows: grades, subsidies, active advisors. The
-- other columns of those rows are set to 0, and a row left with every column at 0 is deleted, as the
-- projection deletes one.
UPDATE figures SET
    consultations = 0,
    consultation_person_times = 0,
    consultations_topic_land = 0,
    consultations_topic_marriage_family = 0,
    consultations_topic_labour = 0,
    consultations_topic_contract_debt = 0,
    consultations_topic_neighbour_property = 0,
    consultations_topic_inheritance = 0,
    consultations_topic_personal_injury = 0,
    consultations_topic_administrative = 0,
    consultations_topic_other = 0,
    consultations_channel_on_site = 0,
    consultations_channel_phone = 0,
    consultations_channel_wechat = 0,
    consultations_channel_online = 0,
    consultations_channel_hotline_12348 = 0,
    mediations = 0,
    mediations_resolved = 0,
    mediations_major_or_difficult = 0,
    mediations_petition_backlog = 0,
    mediations_major_or_backlog = 0,
    lectures = 0,
    lecture_attendees = 0,
    lectures_evening_or_holiday = 0,
    legal_aid_referral = 0,
    legal_aid_application_assisted = 0,
    legal_aid_case_represented = 0,
    documents_village_rules = 0,
    documents_contract_review = 0,
    documents_legal_document_drafted = 0,
    documents_legal_opinion = 0,
    visits = 0,
    on_site_minutes = 0,
    risk_reports = 0,
    risk_reports_low = 0,
    risk_reports_medium = 0,
    risk_reports_high = 0,
    feedback = 0,
    feedback_score_sum = 0,
    village_months_closed = 0,
    village_months_met = 0
WHERE length(region_code) IN (6, 9)
  AND period !~ '^\d{4}-\d{2}$';

DELETE FROM figures
WHERE length(region_code) IN (6, 9)
  AND period !~ '^\d{4}-\d{2}$'
  AND consultations = 0
  AND consultation_person_times = 0
  AND consultations_topic_land = 0
  AND consultations_topic_marriage_family = 0
  AND consultations_topic_labour = 0
  AND consultations_topic_contract_debt = 0
  AND consultations_topic_neighbour_property = 0
  AND consultations_topic_inheritance = 0
  AND consultations_topic_personal_injury = 0
  AND consultations_topic_administrative = 0
  AND consultations_topic_other = 0
  AND consultations_channel_on_site = 0
  AND consultations_channel_phone = 0
  AND consultations_channel_wechat = 0
  AND consultations_channel_online = 0
  AND consultations_channel_hotline_12348 = 0
  AND mediations = 0
  AND mediations_resolved = 0
  AND mediations_major_or_difficult = 0
  AND mediations_petition_backlog = 0
  AND mediations_major_or_backlog = 0
  AND lectures = 0
  AND lecture_attendees = 0
  AND lectures_evening_or_holiday = 0
  AND legal_aid_referral = 0
  AND legal_aid_application_assisted = 0
  AND legal_aid_case_represented = 0
  AND documents_village_rules = 0
  AND documents_contract_review = 0
  AND documents_legal_document_drafted = 0
  AND documents_legal_opinion = 0
  AND visits = 0
  AND on_site_minutes = 0
  AND risk_reports = 0
  AND risk_reports_low = 0
  AND risk_reports_medium = 0
  AND risk_reports_high = 0
  AND feedback = 0
  AND feedback_score_sum = 0
  AND village_months_closed = 0
  AND village_months_met = 0
  AND graded = 0
  AND grades_excellent = 0
  AND grades_good = 0
  AND grades_qualified = 0
  AND grades_unqualified = 0
  AND grades_violation = 0
  AND subsidy_fen = 0
  AND subsidy_yuan = 0
  AND active_advisors = 0;
