import { userInfo } from 'node:os';

/** Who decides (or writes), for the record: the OS user running this process. */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}
