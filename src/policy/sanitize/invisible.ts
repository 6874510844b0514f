// Characters that render as nothing (zero-width spaces and joiners, word joiner, BOM, soft hyphen): put inside a word
// they leave it looking the same to the model and to a reader while no longer matching it character by character.
export const INVISIBLE_CLASS = '[\\u200b-\\u200d\\u2060\\ufeff\\u00ad]';
