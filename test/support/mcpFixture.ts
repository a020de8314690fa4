import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { McpHttpServer, McpStdioServer } from '../../src/runtime/mcp/mcpConfig';
import { within } from './processes';

/** The compiled fixture MCP server (see mcpFixtureServer.ts). */
export const FIXTURE_SERVER = join(__dirname, 'mcpFixtureServer.js');

/** What the fixture server writes: its call log, its pid, and the file its `versioned` tool reads. */
export interface FixtureFiles {
  readonly log: string;
  readonly pidFile: string;
  readonly versionFile: string;
}

export function fixtureFiles(dir: string): FixtureFiles {
  return { log: join(dir, 'calls.jsonl'), pidFile: join(dir, 'server.pid'), versionFile: join(dir, 'version.txt') };
}

/** The fixture as a stdio server declaration, as an agent writes it. */
export function stdioFixture(files: FixtureFiles, extraArgs: readonly string[] = []): McpStdioServer {
  return {
    command: process.execPath,
    args: [FIXTURE_SERVER, ...extraArgs],
    env: { MCP_FIXTURE_LOG: files.log, MCP_FIXTURE_PIDFILE: files.pidFile, MCP_FIXTURE_VERSION_FILE: files.versionFile },
  };
}

export interface LoggedCall {
  readonly name: string;
  readonly arguments: Record<string, unknown>;
  readonly meta: Record<string, unknown> | undefined;
  readonly pid: number;
}

/** Every call the fixture server received, in order. */
export function loggedCalls(files: FixtureFiles): LoggedCall[] {
  if (!existsSync(files.log)) return [];
  return readFileSync(files.log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LoggedCall);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The fixture over Streamable HTTP, in a process of its own, requiring `Authorization: Bearer <token>`. */
export class HttpFixture {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(files: FixtureFiles, token: string, port = 0): Promise<HttpFixture> {
    const child = spawn(process.execPath, [FIXTURE_SERVER, '--http', String(port)], {
      env: { ...process.env, MCP_FIXTURE_LOG: files.log, MCP_FIXTURE_VERSION_FILE: files.versionFile, MCP_FIXTURE_TOKEN: token },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const listening = new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`the HTTP fixture exited with ${String(code)}`)));
    });
    return new HttpFixture(child, await within(listening, 'the HTTP fixture listening'));
  }

  /** The server as an agent declares it, its token from the environment variable `tokenVariable`. */
  declaration(tokenVariable: string): McpHttpServer {
    return { type: 'http', url: `http://127.0.0.1:${this.port}/mcp`, headers: { Authorization: `Bearer \${env:${tokenVariable}}` } };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
