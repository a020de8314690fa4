import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import importCycles from './scripts/lint/importCycles.mjs';

/**
 * Front ends reach the runtime only through its public entry, src/runtime/index.ts. A front end
 * that goes through it is one more line here.
 */
const FRONT_ENDS = ['src/extension'];

/** Code that imports nothing of the runtime at all: the webviews (a browser bundle), the protocol (it owns its types) and the shared modules. */
const RUNTIME_FREE = ['webview', 'src/protocol', 'src/shared'];

/** What src/shared may not import: it is the floor every other layer stands on. */
const ABOVE_SHARED = ['src/runtime', 'src/protocol', 'src/extension', 'src/daemon', 'src/cli', 'src/debugAdapter', 'webview'];

const local = (folders) => folders.map((folder) => `./${folder}`);

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.keel/**', 'test-results/**', '.vscode-test/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended, importX.flatConfigs.typescript],
    plugins: { keel: importCycles },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: ['tsconfig.json', 'tsconfig.webview.json'], noWarnOnMultipleProjects: true }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Type-only imports count: import-x/no-cycle skips them.
      'keel/no-cycle': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            {
              target: local(FRONT_ENDS),
              from: './src/runtime',
              except: ['./index.ts'],
              message: 'Front ends use the runtime through src/runtime/index.ts; what crosses to the editor is a type of src/protocol.',
            },
            {
              target: local(RUNTIME_FREE),
              from: './src/runtime',
              message: 'Webviews, the protocol and src/shared use protocol types and src/shared, never the runtime.',
            },
            { target: './src/shared', from: local(ABOVE_SHARED), message: 'src/shared imports only src/shared.' },
          ],
        },
      ],
      'no-restricted-syntax': ['error', { selector: 'TSAnyKeyword', message: 'Use a precise type or unknown.' }],
    },
  },
  {
    files: ['src/runtime/**', 'src/protocol/**', 'src/shared/**', 'src/daemon/**', 'src/cli/**', 'webview/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'vscode', message: 'Only src/extension (and the VS Code tests) may import vscode.' }] },
      ],
    },
  },
  {
    // A source file past this is doing several things: split it by what it does.
    files: ['src/**/*.ts', 'webview/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 600, skipBlankLines: false, skipComments: false }] },
  },
  {
    files: ['webview/**'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.webview.json' } },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
