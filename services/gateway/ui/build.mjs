// Builds src/ into dist/: app.js (every module, bundled and minified by esbuild), app.css
// (the stylesheet), uplot.css (uPlot's own), index.html (the page shell), and a .gz copy of
// each text file, which the gateway serves to browsers that accept gzip.
// Run with `npm run build`; the gateway's build.rs runs it when src/ changes.

import { build } from 'esbuild';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  entryPoints: { app: join(root, 'src/main.js') },
  bundle: true,
  format: 'iife',
  target: ['chrome111', 'firefox113', 'safari16.2'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  outdir: dist,
  logLevel: 'warning',
});
await copyFile(join(root, 'node_modules/uplot/dist/uPlot.min.css'), join(dist, 'uplot.css'));
await copyFile(join(root, 'src/index.html'), join(dist, 'index.html'));

for (const name of await readdir(dist)) {
  if (!/\.(js|css|html|map|txt)$/.test(name)) continue;
  const body = await readFile(join(dist, name));
  await writeFile(join(dist, `${name}.gz`), gzipSync(body, { level: 9 }));
}
