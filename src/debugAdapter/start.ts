import * as nodeModule from 'node:module';

/**
 * The debug adapter's entry (dist/debugAdapter.js, what the editor starts): turns on V8's compile
 * cache, then loads the adapter (dist/debugAdapterMain.js, several MB), so that a session after
 * the first does not compile it again before answering `initialize`. Node before 22.1 has no
 * compile cache; the adapter itself then says which Node it needs.
 */
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
nodeModule.createRequire(__filename)('./debugAdapterMain.js');
