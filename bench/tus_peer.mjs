// The tus project's own Node server (@tus/server with @tus/file-store), the peer the bench
// measures Coffer's resumable upload beside. As its README shows it, nothing tuned:
//   node bench/tus_peer.mjs --modules DIR/node_modules --port N --directory DIR
// Prints "listening on PORT" once it accepts connections; ends on SIGTERM or SIGINT.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    modules: { type: 'string' },
    port: { type: 'string' },
    directory: { type: 'string' },
  },
});
if (!values.modules || !values.port || !values.directory) {
  console.error('usage: tus_peer.mjs --modules DIR --port N --directory DIR');
  process.exit(2);
}

// The packages live in the bench's npm cache, not beside this file: resolve them from there.
const require = createRequire(path.join(path.resolve(values.modules, '..'), 'package.json'));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { Server } = await load('@tus/server');
const { FileStore } = await load('@tus/file-store');

const tus = new Server({
  path: '/files',
  datastore: new FileStore({ directory: values.directory }),
});
const server = http.createServer((req, res) => tus.handle(req, res));
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`listening on ${values.port}`);
});
// Nothing to flush or finish: an upload cut short is what the bench would throw away anyway.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
