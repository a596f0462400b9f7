// Builds src/ into dist/ (or $FLEETWATCH_UI_OUT): app.js and its chunks (every module as
// ES modules, bundled and minified by esbuild; pages that pull in large libraries, such as
// the topology's graph library, load as chunks of their own when first opened), boot.js
// (applies the remembered theme before the first paint), app.css (the stylesheets),
// uplot.css (uPlot's own), index.html (the page shell, listing each page's chunks so they
// load at once), and a .gz copy of each text file,
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
const app = await build({
  ...common,
  entryPoints: { app: join(root, 'src/main.js') },
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
});
await build({ ...common, entryPoints: { boot: join(root, 'src/boot.js') }, format: 'iife' });
await copyFile(join(root, 'node_modules/uplot/dist/uPlot.min.css'), join(dist, 'uplot.css'));
await writeFile(join(dist, 'index.html'), await shell());
await copyFile(join(root, 'src/favicon.svg'), join(dist, 'favicon.svg'));

/**
 * Each page's chunk and every chunk it imports (beyond what app.js already loads), as URLs:
 * main.js preloads them all at once when it opens the page, instead of finding each import
 * only once the one before it has arrived.
 */
function pageChunks({ outputs }) {
  const url = (file) => `/assets/${relative(dist, join(process.cwd(), file))}`;
  const closure = (file, seen = new Set()) => {
    for (const { path, kind } of outputs[file].imports) {
      if (kind === 'import-statement' && !seen.has(path)) closure(path, seen.add(path));
    }
    return seen;
  };
  const appFile = Object.keys(outputs).find((file) => outputs[file].entryPoint?.endsWith('src/main.js'));
  const loaded = closure(appFile);
  const pages = {};
  for (const [file, output] of Object.entries(outputs)) {
    const page = output.entryPoint?.match(/src\/pages\/([\w-]+)\.js$/)?.[1];
    if (page) pages[page] = [file, ...closure(file)].filter((chunk) => !loaded.has(chunk)).map(url);
  }
  return pages;
}

/** index.html with the page chunks in `<meta name="fleetwatch-chunks">`. */
async function shell() {
  const html = await readFile(join(root, 'src/index.html'), 'utf8');
  const chunks = JSON.stringify(pageChunks(app.metafile)).replaceAll('"', '&quot;');
  const placeholder = '<meta name="fleetwatch-chunks" content="{}">';
  if (!html.includes(placeholder)) throw new Error(`src/index.html lacks ${placeholder}`);
  return html.replace(placeholder, `<meta name="fleetwatch-chunks" content="${chunks}">`);
}

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
