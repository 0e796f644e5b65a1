// Validation against the published schemas: ajv 2020-12 in strict mode with the project's keywords
// (`keywords.json` next to the schemas in the package) and the formats the schemas use.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

/** Compile every `<event type>.json` in `dir`; returns {compiled: {type: validate}, errors: {type: text}}. */
export function validatorFor(dir, { registerKeywords = true } = {}) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  if (registerKeywords) {
    // keywords.json sits beside schemas/ in the package (and in contracts/ of the repository).
    const keywordsFile = path.join(dir, "..", "keywords.json");
    const keywords = existsSync(keywordsFile) ? JSON.parse(readFileSync(keywordsFile, "utf8")) : {};
    for (const [keyword, spec] of Object.entries(keywords)) {
      ajv.addKeyword({ keyword, schemaType: spec.schemaType });
    }
  }
  const compiled = {};
  const errors = {};
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".json")).sort()) {
    const type = file.slice(0, -".json".length);
    try {
      compiled[type] = ajv.compile(JSON.parse(readFileSync(path.join(dir, file), "utf8")));
    } catch (error) {
      errors[type] = String(error.message);
    }
  }
  return { compiled, errors };
}
