// The page's build: one esbuild bundle (dist/app.js) and the static files beside it.
// config.js is not built: the stack writes it at serve time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.jsx'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  outfile: 'dist/app.js',
  logLevel: 'warning',
});
copyFileSync('public/index.html', 'dist/index.html');
