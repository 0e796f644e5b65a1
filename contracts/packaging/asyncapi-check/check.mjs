// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints one JSON object:
// the diagnostics by severity (errors, warnings) and, per message, the Kafka binding's key and the
// payload's schemaFormat as the parser sees them. Usage: node check.mjs path/to/asyncapi.yaml
import { Parser, fromFile } from "@asyncapi/parser";

const { document, diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
const said = (severity) =>
  diagnostics.filter((d) => d.severity === severity).map((d) => `${d.code}: ${d.message} @ ${d.path.join(".")}`);
const messages = {};
for (const message of document ? document.messages().all() : []) {
  messages[message.name()] = {
    key: message.bindings().get("kafka")?.value()?.key ?? null,
    schemaFormat: message.schemaFormat(),
  };
}
console.log(JSON.stringify({ parsed: Boolean(document), errors: said(0), warnings: said(1), messages }));
