import type { DestinationStream } from '../../src/observability/logger.js';

/** A log destination in memory: what the server logged, as text and as parsed JSON lines. */
export type CapturedLogs = {
  stream: DestinationStream;
  text(): string;
  lines(): Record<string, unknown>[];
};

/** Pass `stream` as startTestServer's `logDestination` (or startServer's) to read the logs in a test. */
export function captureLogs(): CapturedLogs {
  const chunks: string[] = [];
  const text = () => chunks.join('');
  return {
    stream: { write: (chunk: string) => void chunks.push(chunk) },
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
