// Comma-separated lists as environment variables and list headers (RFC 9110 §5.6.1) carry them.

/**
 * The items of a comma-separated list, white space around each dropped and empty ones skipped (`a, ,b,` is a and b,
 * as RFC 9110 §5.6.1 has recipients read a list); none for an unset value.
 * @example commaList(env.TOLLGATE_KVM_PREVIOUS_KEYS)
 */
export function commaList(value: string | undefined): string[] {
  return value ? value.split(',').map((item) => item.trim()).filter(Boolean) : [];
}
