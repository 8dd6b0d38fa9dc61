/**
 * Regular expressions from a policy document run on every call against header and query values the
 * caller does not control, so a pattern that can backtrack exponentially ("(a+)+$") is a denial of
 * service. V8 has no linear-time engine by default, so meshfetch bounds both sides: it refuses the
 * constructs that make backtracking blow up (a quantified group that itself contains a quantifier or
 * an alternation, backreferences, lookarounds), and it matches at most MAX_MATCHED_LENGTH characters
 * of a value (a longer value does not match).
 */
export const MAX_PATTERN_LENGTH = 256;
export const MAX_MATCHED_LENGTH = 1_024;

/** What is unsafe or wrong in `pattern`, or undefined when it compiles and is safe to run on input. */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    return `does not compile: ${(err as Error).message}`;
  }
  if (/\\[1-9]|\\k</.test(pattern)) return 'backreferences are not allowed';
  if (/\(\?<?[=!]/.test(pattern)) return 'lookahead and lookbehind are not allowed';
  return nestedQuantifier(pattern);
}

/**
 * Walks the pattern's groups: a group followed by a quantifier (*, +, {n,}) whose body holds a
 * quantifier or "|" is the shape of catastrophic backtracking ("(a+)+", "(a|aa)*").
 */
function nestedQuantifier(pattern: string): string | undefined {
  /** Per open group: whether its body has a quantifier or an alternation. */
  const open: boolean[] = [];
  let risky = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      // A character class: skip to its end; quantifiers inside are literal.
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
      continue;
    }
    if (c === '(') {
      open.push(risky);
      risky = false;
    } else if (c === ')') {
      const bodyRisky: boolean = risky;
      risky = open.pop() ?? false;
      const next = pattern[i + 1];
      const repeated = next === '*' || next === '+' || (next === '{' && /^\{\d*,\d*\}/.test(pattern.slice(i + 1)) && !/^\{\d+\}/.test(pattern.slice(i + 1)));
      if (repeated && bodyRisky) return 'a repeated group that contains a quantifier or "|" (such as "(a+)+") can take exponential time';
      risky ||= bodyRisky || repeated;
    } else if (c === '*' || c === '+' || c === '?' || c === '|' || c === '{') {
      risky = true;
    }
  }
  return undefined;
}
