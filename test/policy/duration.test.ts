import { expect } from 'chai';
import { parseDuration as publicParseDuration } from '../../lib/index.ts';
import { parseDuration } from '../../lib/policy/duration.ts';

describe('policy durations', () => {
  it('is exported from the package entry point', () => {
    expect(publicParseDuration).to.equal(parseDuration);
  });

  it('parses milliseconds, seconds, minutes and hours', () => {
    expect(parseDuration('250ms')).to.equal(250);
    expect(parseDuration('0ms')).to.equal(0);
    expect(parseDuration('10s')).to.equal(10_000);
    expect(parseDuration('1m')).to.equal(60_000);
    expect(parseDuration('2h')).to.equal(7_200_000);
  });

  it('accepts fractions and rounds to whole milliseconds', () => {
    expect(parseDuration('1.5m')).to.equal(90_000);
    expect(parseDuration('0.25s')).to.equal(250);
    expect(parseDuration('1.4ms')).to.equal(1);
    expect(parseDuration('1.6ms')).to.equal(2);
  });

  it('ignores surrounding whitespace', () => {
    expect(parseDuration('  5s ')).to.equal(5_000);
  });

  it('returns undefined for anything that is not a duration string', () => {
    for (const value of ['10', '10 s', '-1s', '1d', 's', 'ms', '1.s', '.5s', '1e3ms', '1S', '1MS', '', '10s5ms', 10, 10_000, null, undefined, {}, ['1s']]) {
      expect(parseDuration(value), JSON.stringify(value)).to.equal(undefined);
    }
  });
});
