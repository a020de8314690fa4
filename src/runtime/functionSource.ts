/**
 * The source of a function that runs somewhere else (an isolate, a `node -e` process), as an
 * expression whose value is that function. Keel's bundles keep names (esbuild's keepNames, see
 * scripts/build.mjs), which puts calls to a `__name` helper inside functions' source; the
 * expression defines that helper as esbuild does, from built-ins only, so the function needs
 * nothing of the bundle it came from.
 */
export function functionSource(fn: (...args: never[]) => unknown): string {
  return `((__name) => (${fn.toString()}))((target, value) => Object.defineProperty(target, 'name', { value, configurable: true }))`;
}
