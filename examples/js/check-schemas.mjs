// Compiles every published schema with ajv in strict mode (its default), the project's keywords
// registered. Prints one JSON line: {"compiled": N, "errors": {...}}; exits 1 when any schema fails.
// Usage: node check-schemas.mjs SCHEMA_DIR [--without-keywords]
import { validatorFor } from "./validate.mjs";

const [dir, flag] = process.argv.slice(2);
const { compiled, errors } = validatorFor(dir, { registerKeywords: flag !== "--without-keywords" });
console.log(JSON.stringify({ compiled: Object.keys(compiled).length, errors }));
process.exit(Object.keys(errors).length ? 1 : 0);
