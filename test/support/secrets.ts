/** Secrets of every kind the built-in patterns know, plus one only a configured pattern catches and one only the environment knows. */
export const SECRETS = {
  openai: 'sk-proj-Abc123def456ghi789jkl012mno345',
  anthropic: 'sk-ant-api03-ZYXwvu987654321abcdefghij',
  bearer: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlc2lnbmF0dXJl',
  aws: 'AKIAIOSFODNN7EXAMPLE',
  github: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
  password: 'hunter2-is-not-safe',
  custom: 'ACME-987654',
  fromEnv: 'plain-looking-value-42',
} as const;
