// The published contracts for JavaScript: every event type's JSON Schema (2020-12) and the project's own
// schema keywords, which a validator in strict mode (ajv's default) must be told about.
import { readFileSync, readdirSync } from "node:fs";

export const schemaDir = new URL("./schemas/", import.meta.url);

/** The project's keywords: {"x-topic": {schemaType, description}, "x-personal": {...}}. */
export const keywords = JSON.parse(readFileSync(new URL("./keywords.json", import.meta.url), "utf8"));

/** Every event type's schema, keyed by event type (the CloudEvents `ce_type`). */
export function schemas() {
  const found = {};
  for (const name of readdirSync(schemaDir).filter((file) => file.endsWith(".json")).sort()) {
    found[name.slice(0, -".json".length)] = JSON.parse(readFileSync(new URL(name, schemaDir), "utf8"));
  }
  return found;
}

/** Register the project's keywords on an ajv instance (Ajv2020), so that strict mode compiles the schemas. */
export function addKeywords(ajv) {
  for (const [keyword, spec] of Object.entries(keywords)) {
    ajv.addKeyword({ keyword, schemaType: spec.schemaType });
  }
  return ajv;
}
