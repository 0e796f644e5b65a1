// The consumer's rules, as docs/integrating.md states them: a record counts once (ce_id), only when it
// fits its published schema and its key is its village; a void takes back exactly what its target added
// when the catalogue's rule permits it (contracts/events.py `void_permitted`).
const SUPERVISING_ROLES = new Set([
  "township_office",
  "county_bureau",
  "prefecture_bureau",
  "province_department",
]);

/** What one record adds to its village's tally (empty for what is not counted). */
export function contributions(type, data) {
  switch (type) {
    case "consultation.recorded":
      return { consultations: 1, consultation_person_times: data.person_times };
    case "mediation.recorded":
      return { mediations: 1 };
    case "risk.reported":
      return { risk_reports: 1, [`risk_reports_${data.severity}`]: 1 };
    default:
      return {};
  }
}

export function voidPermitted(voided, target) {
  if (voided.recorded_by_role == null || target.recorded_by == null) return true;
  if (SUPERVISING_ROLES.has(voided.recorded_by_role)) return true;
  if (voided.recorded_by_role === "advisor" && voided.recorded_by === target.advisor_id) return true;
  return voided.recorded_by === target.recorded_by;
}

export class Tally {
  constructor(valid) {
    this.valid = valid; // (type, payload) => boolean
    this.seen = new Set();
    this.counted = new Map(); // ce_id -> {village, figures, advisor_id, recorded_by}
    this.figures = new Map(); // village -> {metric: value}
    this.stats = { read: 0, duplicates: 0, invalid: 0, voids_applied: 0 };
  }

  add(village, figures, sign) {
    const found = this.figures.get(village) ?? {};
    for (const [metric, value] of Object.entries(figures)) found[metric] = (found[metric] ?? 0) + sign * value;
    this.figures.set(village, found);
  }

  apply(key, headers, value) {
    this.stats.read += 1;
    const id = headers.ce_id;
    const type = headers.ce_type;
    let data;
    try {
      data = JSON.parse(value.toString("utf8")); // a record without a value (null) lands in the catch
    } catch {
      this.stats.invalid += 1;
      return;
    }
    if (!id || !type || !this.valid(type, data) || key !== data.village_code) {
      this.stats.invalid += 1; // a consumer of ours would put it on its .dlq; a reader-only skips it
      return;
    }
    if (this.seen.has(id)) {
      this.stats.duplicates += 1;
      return;
    }
    this.seen.add(id);
    if (type === "record.voided") {
      const target = this.counted.get(data.target_event_id);
      if (target && voidPermitted(data, target)) {
        this.add(target.village, target.figures, -1);
        this.counted.delete(data.target_event_id);
        this.stats.voids_applied += 1;
      }
      return;
    }
    const figures = contributions(type, data);
    if (Object.keys(figures).length === 0) return;
    this.add(data.village_code, figures, 1);
    this.counted.set(id, {
      village: data.village_code,
      figures,
      advisor_id: data.advisor_id,
      recorded_by: data.recorded_by,
    });
  }

  villages() {
    return [...this.figures.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  summary() {
    return { ...this.stats, villages: this.figures.size };
  }
}
