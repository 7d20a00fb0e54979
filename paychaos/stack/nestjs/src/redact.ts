// Card numbers never reach a span, a log or a metric: every Luhn-valid run of
// 13-19 digits (spaces or dashes allowed) is masked, as the Python API does.
const PAN_CANDIDATE = /\d(?:[ -]?\d){12,18}/g;

export function luhnValid(digits: string): boolean {
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    let value = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      value *= 2;
      if (value > 9) value -= 9;
    }
    total += value;
  }
  return total % 10 === 0;
}

export function redactPan(text: string): string {
  if (text.length < 13) return text;
  return text.replace(PAN_CANDIDATE, (raw) => {
    const digits = raw.replace(/[ -]/g, "");
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits)
      ? `[PAN REDACTED ...${digits.slice(-4)}]`
      : raw;
  });
}

export function containsPan(text: string): boolean {
  return redactPan(text) !== text;
}
