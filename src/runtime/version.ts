import packageJson from '../../package.json';

export const KEEL_VERSION: string = packageJson.version;
