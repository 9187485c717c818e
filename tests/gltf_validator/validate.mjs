// Validate one .glb/.gltf file with the Khronos glTF validator (npm package `gltf-validator`).
//
//   node tests/gltf_validator/validate.mjs path/to/file.glb
//
// Prints one JSON object on stdout: the issue counts, every issue message (code, severity,
// pointer, message) and the validator's `info` summary (counts of meshes, animations, ...).
// Exits 1 when the report has errors, 2 when the file cannot be read or validated at all, else 0.
// Install once with `npm ci --prefix tests/gltf_validator`.

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename } from "node:path";

// The package's `main` is CommonJS; createRequire loads it the same way under every Node version.
const require = createRequire(import.meta.url);
const validator = require("gltf-validator");

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs FILE.glb");
  process.exit(2);
}

let report;
try {
  const bytes = new Uint8Array(await readFile(path));
  // maxIssues 0 = no limit, so the test sees every issue rather than a truncated list.
  report = await validator.validateBytes(bytes, { uri: basename(path), maxIssues: 0 });
} catch (error) {
  console.error(`validation failed for ${path}: ${error}`);
  process.exit(2);
}

const { issues, info } = report;
const SEVERITY = ["error", "warning", "info", "hint"];
const summary = {
  uri: report.uri,
  validator: `${report.validatorVersion}`,
  numErrors: issues.numErrors,
  numWarnings: issues.numWarnings,
  numInfos: issues.numInfos,
  numHints: issues.numHints,
  truncated: issues.truncated,
  messages: issues.messages.map((m) => ({
    code: m.code,
    severity: SEVERITY[m.severity] ?? m.severity,
    pointer: m.pointer,
    message: m.message,
  })),
  info,
};
console.log(JSON.stringify(summary, null, 2));
process.exit(issues.numErrors > 0 ? 1 : 0);
