import { InvalidArgumentError } from 'commander';

/** A commander argument parser for a whole-number option, naming the option when the value is bad. */
export function wholeNumber(option: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65_535 * 1_000) throw new InvalidArgumentError(`${option}: expected a whole number, got "${value}"`);
    return n;
  };
}
