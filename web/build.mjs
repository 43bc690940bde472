// Builds the viewer's assets into web/dist/ (watch.js with hls.js bundled, watch.css; tv.js for /tv and
// /activate; locale-<lang>.ftl, the viewer pages' messages; docs.css for the API
// reference page; admin.js and admin.css for the admin console), which the server embeds and serves at
// /assets/<file name>. Run from anywhere: `node web/build.mjs`.
import * as esbuild from 'esbuild';
import { copyFile, rm, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');

// Start from an empty dist/ so no stale file ends up embedded in the server.
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  logLevel: 'warning',
  legalComments: 'eof', // keep the licence notices of bundled code (hls.js is Apache-2.0)
  absWorkingDir: root,
};

await esbuild.build({
  ...common,
  entryPoints: ['src/watch.js'],
  outfile: join(dist, 'watch.js'),
  format: 'iife',
  platform: 'browser',
  // es2019-ish; esbuild cannot lower hls.js's destructuring for Safari before 14.1.
  target: ['es2019', 'chrome80', 'firefox78', 'safari14.1', 'edge88'],
});

// The TV sign-in and phone approval pages' small script.
await esbuild.build({
  ...common,
  entryPoints: ['src/tv.js'],
  outfile: join(dist, 'tv.js'),
  format: 'iife',
  platform: 'browser',
  target: ['es2019', 'chrome80', 'firefox78', 'safari14.1', 'edge88'],
});

for (const name of ['watch.css', 'docs.css']) {
  await esbuild.build({
    ...common,
    entryPoints: [`src/${name}`],
    outfile: join(dist, name),
    target: ['chrome80', 'firefox78', 'safari14.1', 'edge88'],
  });
}

// The admin console's small script and styles (tus-js-client bundled for resumable video uploads, MIT).
await esbuild.build({
  ...common,
  entryPoints: ['src/admin.js'],
  outfile: join(dist, 'admin.js'),
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome90', 'firefox88', 'safari14.1', 'edge90'],
});

await esbuild.build({
  ...common,
  entryPoints: ['src/admin.css'],
  outfile: join(dist, 'admin.css'),
  target: ['chrome90', 'firefox88', 'safari14.1', 'edge90'],
});

// The viewer pages' messages (Project Fluent), for the language picker: /assets/locale-<lang>.ftl. The
// server compiles the same files in for the pages it renders.
for (const name of (await readdir(join(root, 'locales'))).filter((n) => n.endsWith('.ftl'))) {
  await copyFile(join(root, 'locales', name), join(dist, `locale-${name}`));
}

for (const name of (await readdir(dist)).sort()) {
  const { size } = await stat(join(dist, name));
  console.log(`web/dist/${name} ${(size / 1024).toFixed(1)} KiB`);
}
