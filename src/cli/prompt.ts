// Yes/no questions for a person at a terminal. Scripts (no terminal, or --json) are never asked.
import { createInterface } from 'node:readline';

export function canAsk(json: boolean): boolean {
  return !json && Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY);
}

/**
 * Asks on stderr; Enter (or end of input) gives `byDefault`. Ctrl-C while asking calls
 * `onInterrupt`, or answers no when there is none.
 */
export function askYesNo(question: string, byDefault: boolean, onInterrupt?: () => void): Promise<boolean> {
  return new Promise((resolve) => {
    const reader = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let answered = false;
    const answer = (yes: boolean) => {
      if (answered) return;
      answered = true;
      reader.close();
      resolve(yes);
    };
    reader.on('SIGINT', () => (onInterrupt ? onInterrupt() : answer(false)));
    reader.on('close', () => answer(byDefault));
    reader.question(`${question} [${byDefault ? 'Y/n' : 'y/N'}] `, (text) => {
      const trimmed = text.trim();
      answer(trimmed === '' ? byDefault : /^y(es)?$/i.test(trimmed));
    });
  });
}
