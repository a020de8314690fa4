// An ESLint rule that reports import cycles among the repository's TypeScript files, type-only
// imports included: import-x/no-cycle skips those, but a cycle of types still ties two modules'
// meanings together, so neither can be understood or moved without the other.
import { relative, resolve } from 'node:path';
import ts from 'typescript';

const RESOLUTION = { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler };

/** Each file's relative imports, resolved to files, with the time the file was read: an edited file is read again. */
const graph = new Map();

/** The repository's own TypeScript file that `specifier` names from `from`, or undefined (a package, a missing file). */
function resolveImport(specifier, from) {
  if (!specifier.startsWith('.')) return undefined;
  const resolved = ts.resolveModuleName(specifier, from, RESOLUTION, ts.sys).resolvedModule;
  if (!resolved || resolved.isExternalLibraryImport || resolved.resolvedFileName.endsWith('.d.ts')) return undefined;
  return resolve(resolved.resolvedFileName);
}

function importsOf(file) {
  const modified = ts.sys.getModifiedTime?.(file)?.getTime() ?? 0;
  const known = graph.get(file);
  if (known && known.modified === modified) return known.imports;
  const text = ts.sys.readFile(file) ?? '';
  const imports = new Set();
  for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
    const target = resolveImport(fileName, file);
    if (target) imports.add(target);
  }
  graph.set(file, { modified, imports });
  return imports;
}

/** The shortest chain of imports from `start` to `goal`, both included; undefined when there is none. */
function chain(start, goal) {
  const cameFrom = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    if (file === goal) {
      const route = [];
      for (let at = file; at !== null; at = cameFrom.get(at)) route.unshift(at);
      return route;
    }
    for (const next of importsOf(file)) {
      if (!cameFrom.has(next)) {
        cameFrom.set(next, file);
        queue.push(next);
      }
    }
  }
  return undefined;
}

const noCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Disallow import cycles among TypeScript files, counting type-only imports.' },
    schema: [],
    messages: { cycle: 'Import cycle (type-only imports count): {{route}}. Move what both sides need into a module of its own.' },
  },
  create(context) {
    const file = resolve(context.physicalFilename);
    const cwd = context.cwd;
    const check = (node) => {
      const specifier = node.source?.value;
      if (typeof specifier !== 'string') return;
      const target = resolveImport(specifier, file);
      if (!target || target === file) return;
      const route = chain(target, file);
      if (!route) return;
      const shown = [file, ...route].map((path) => relative(cwd, path));
      context.report({ node: node.source, messageId: 'cycle', data: { route: shown.join(' -> ') } });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default { meta: { name: 'keel' }, rules: { 'no-cycle': noCycle } };
