// Builds src/ into dist/ (or $FLEETWATCH_UI_OUT): app.js and its chunks (every module as
// ES modules, bundled and minified by esbuild; pages that pull in large libraries, such as
// the topology's graph library, load as chunks of their own when first opened), boot.js
// (applies the remembered theme before the first paint), app.css (the stylesheets),
// uplot.css (uPlot's own), index.html (the page shell), and a .gz copy of each text file,
// which the gateway serves to browsers that accept gzip.
// Run with `npm run build`; the gateway's build.rs runs it when src/ changes.

import { build } from 'esbuild';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = process.env.FLEETWATCH_UI_OUT ?? join(root, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  bundle: true,
  target: ['chrome111', 'firefox113', 'safari16.2'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  outdir: dist,
  logLevel: 'warning',
};
await build({
  ...common,
  entryPoints: { app: join(root, 'src/main.js') },
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});
await build({ ...common, entryPoints: { boot: join(root, 'src/boot.js') }, format: 'iife' });
await copyFile(join(root, 'node_modules/uplot/dist/uPlot.min.css'), join(dist, 'uplot.css'));
await copyFile(join(root, 'src/index.html'), join(dist, 'index.html'));
await copyFile(join(root, 'src/favicon.svg'), join(dist, 'favicon.svg'));

async function files(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await files(path)));
    else found.push(path);
  }
  return found;
}

for (const path of await files(dist)) {
  if (!/\.(js|css|html|map|txt|svg)$/.test(path)) continue;
  const body = await readFile(path);
  await writeFile(`${path}.gz`, gzipSync(body, { level: 9 }));
}
console.log(`dashboard built into ${relative(process.cwd(), dist) || '.'}`);
