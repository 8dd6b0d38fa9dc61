import { InvalidArgumentError } from 'commander';

/** A commander argument parser for a whole-number option of at least `min`, naming the option when the value is bad. */
export function wholeNumber(option: string, min = 0): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > 65_535 * 1_000) {
      throw new InvalidArgumentError(`${option}: expected a whole number${min > 0 ? ` >= ${min}` : ''}, got "${value}"`);
    }
    return n;
  };
}
