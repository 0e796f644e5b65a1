// An integrating system in JavaScript (the grid management system of docs/integrating.md): reads
// village-services from the beginning to the end it finds at start, as its own Kafka user; validates
// every record against the published JSON Schemas; drops duplicates by ce_id; applies voids; prints one
// JSON line per village with its tally, then a summary line on stderr.
//
//   KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 VC_KAFKA_SECURITY_PROTOCOL=SASL_SSL \
//   VC_KAFKA_SASL_USERNAME=integration-grid VC_KAFKA_SASL_PASSWORD_FILE=... VC_KAFKA_CA_FILE=ca.pem \
//   VC_SCHEMA_DIR=node_modules/@villagecounsel/event-contracts/schemas node tally.mjs [VILLAGE_CODE ...]
//
// With village codes as arguments only those villages are printed (all are read).
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import kafkajs from "kafkajs";
import { validatorFor } from "./validate.mjs";
import { Tally } from "./tally-rules.mjs";

const { Kafka, logLevel } = kafkajs;
const TOPIC = "village-services";
const env = process.env;

function connection() {
  const protocol = env.VC_KAFKA_SECURITY_PROTOCOL ?? "PLAINTEXT";
  const config = {
    clientId: "integration-grid-tally-js",
    brokers: (env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:29092").split(","),
    logLevel: logLevel.ERROR,
  };
  if (protocol === "SSL" || protocol === "SASL_SSL") {
    config.ssl = env.VC_KAFKA_CA_FILE ? { ca: [readFileSync(env.VC_KAFKA_CA_FILE, "utf8")] } : true;
  }
  if (protocol.startsWith("SASL_")) {
    const password = env.VC_KAFKA_SASL_PASSWORD_FILE
      ? readFileSync(env.VC_KAFKA_SASL_PASSWORD_FILE, "utf8").trim()
      : env.VC_KAFKA_SASL_PASSWORD;
    config.sasl = {
      mechanism: (env.VC_KAFKA_SASL_MECHANISM ?? "SCRAM-SHA-512").toLowerCase(),
      username: env.VC_KAFKA_SASL_USERNAME,
      password,
    };
  }
  return new Kafka(config);
}

function headerMap(headers) {
  const found = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    found[name] = Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
  }
  return found;
}

async function main() {
  const only = new Set(process.argv.slice(2));
  const schemaDir = env.VC_SCHEMA_DIR ?? new URL("../../contracts/schemas", import.meta.url).pathname;
  const { compiled, errors } = validatorFor(schemaDir);
  if (Object.keys(errors).length) throw new Error(`schemas do not compile: ${JSON.stringify(errors)}`);

  const kafka = connection();
  const admin = kafka.admin();
  await admin.connect();
  // Where the topic ends now: the tally covers everything up to here, then the program ends.
  const ends = new Map();
  for (const { partition, high } of await admin.fetchTopicOffsets(TOPIC)) {
    if (Number(high) > 0) ends.set(partition, Number(high));
  }
  await admin.disconnect();

  const tally = new Tally((type, value) => {
    const validate = compiled[type];
    if (!validate) return false; // a type this version of the contracts does not know: skip it
    return validate(value) ? true : false;
  });
  if (ends.size) {
    // A group of its own each run (reads from offset 0, commits nothing); a long-running consumer keeps
    // one fixed group id under its prefix (integration-grid-...) and commits after applying.
    const consumer = kafka.consumer({ groupId: `integration-grid-tally-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await new Promise((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const stop = ends.get(batch.partition);
            for (const message of batch.messages) {
              if (stop === undefined || Number(message.offset) >= stop) break;
              tally.apply(
                message.key?.toString("utf8") ?? null,
                headerMap(message.headers),
                message.value,
              );
            }
            // Done with a partition once its batch reaches the end found at start (control records
            // included: lastOffset() counts them, while they never arrive as messages).
            const end = ends.get(batch.partition);
            if (end !== undefined && Number(batch.lastOffset()) >= end - 1) ends.delete(batch.partition);
            if (ends.size === 0) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
  }
  for (const [village, figures] of tally.villages()) {
    if (only.size === 0 || only.has(village)) console.log(JSON.stringify({ village, ...figures }));
  }
  console.error(JSON.stringify(tally.summary()));
}

main().catch((error) => {
  console.error(`tally failed: ${error.stack ?? error}`);
  process.exit(1);
});
