// Regenerates docs/errors.md from ERROR_CATALOGUE in the build (run after `npm run build`).
// test/unit/errors-catalogue.test.ts checks the two agree both ways.
import { writeFileSync } from 'node:fs';
import { ERROR_CATALOGUE } from '../dist/src/errors.js';

let s = `# kfetch error codes

Every error kfetch reports carries one of these codes (in the stderr line as \`[CODE]\`, and as \`code\` in \`--json\`
output and \`--log-json\` logs). Scripts branch on the code, never on the message. The exit status is the code's class:
2 usage, 3 bad input, 4 network, 5 storage, 6 integrity, 1 internal; a server stopped by SIGINT/SIGTERM exits 0.
Per-peer codes (\`KF_E_PEER_*\`) never end the process: they appear in logs and events only.

| code | exit | what to do |
|---|---|---|
`;
for (const [code, v] of Object.entries(ERROR_CATALOGUE)) s += `| \`${code}\` | ${v.exit} | ${v.advice} |\n`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), s);
