// Builds widget/dist, or the folder given as `--outdir DIR`: esbuild bundles each entry point with
// the modules it imports (src/shared.js into both) as one minified IIFE, then prints each file's size
// and gzipped size (the goals: loader <= 4 KB, frame.js with its page <= 15 KB gzipped).
// widget/dist is committed, so the output must be byte-for-byte repeatable: no timestamps, no
// absolute paths, no comments (tests/widget/test_dist.py rebuilds and compares).
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = values.outdir ? resolve(values.outdir) : join(here, "dist");
const entries = ["flint.js", "frame.js"]; // served under /widget/v1/; src/shared.js and src/card.js are modules

await build({
  absWorkingDir: here,
  entryPoints: entries.map((name) => `src/${name}`),
  outdir,
  bundle: true,
  format: "iife",
  minify: true,
  // Safari 14.0 miscompiles some destructuring and esbuild cannot lower it, so the sources do
  // without destructuring rather than drop Safari 14.0 (esbuild refuses the build if they do not).
  target: ["chrome90", "firefox90", "safari14"],
  charset: "ascii",
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
});
for (const name of entries) {
  const body = readFileSync(join(outdir, name));
  const gz = gzipSync(body, { level: 9 }).length;
  console.log(`${relative(process.cwd(), join(outdir, name)) || name}: ${body.length} bytes, ${gz} bytes gzipped`);
}
