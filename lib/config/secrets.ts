/**
 * Userinfo in text that may be a URL ("https://user:pass@host", "user:pass@host") replaced, so that an
 * error message can quote a bad value without its password.
 */
export function withoutUserinfo(text: string): string {
  return text.replace(/[^\s/,@]*@/g, '***@');
}
