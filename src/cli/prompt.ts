import readline from 'node:readline';

/** Asks one question on the terminal; with `hidden`, typed characters are not echoed. */
export async function ask(question: string, { hidden = false } = {}): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  if (hidden) {
    // Echo nothing after the prompt while the user types.
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    output._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stdout.write(question);
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    if (hidden) process.stdout.write('\n');
    rl.close();
  }
}

export const interactive = () => Boolean(process.stdin.isTTY && process.stdout.isTTY);
