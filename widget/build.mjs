// Builds widget/dist: minifies the loader and the card frame's script with esbuild, then prints
// each file's size and gzipped size (the goals: loader <= 4 KB gzipped; see bench/ for the frame).
import { build } from "esbuild";
import { readFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

const files = ["flint.js", "frame.js"];
mkdirSync("dist", { recursive: true });
await build({
  entryPoints: files.map((name) => `src/${name}`),
  outdir: "dist",
  bundle: false,
  minify: true,
  target: ["chrome90", "firefox90", "safari14"],
  legalComments: "none",
  logLevel: "warning",
});
for (const name of files) {
  const body = readFileSync(`dist/${name}`);
  const gz = gzipSync(body, { level: 9 }).length;
  console.log(`widget/dist/${name}: ${body.length} bytes, ${gz} bytes gzipped`);
}
