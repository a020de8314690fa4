/** The runtime's words for runs and text: the one formatting module the CLI, the editor and the webviews share. */
export { RUN_STATE_LABELS, totalTokens } from '../shared/runText';
export { compactArgs, formatBytes, truncate } from '../shared/format';
