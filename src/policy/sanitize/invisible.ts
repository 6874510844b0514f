// Characters that render as nothing (zero-width spaces and joiners, word joiner, BOM, soft hyphen, bidirectional
// controls, variation selectors, tag characters: Unicode's default-ignorable code points): put inside a word they
// leave it looking the same to the model and to a reader while no longer matching it character by character.
/** For patterns with the `u` flag. */
export const INVISIBLE_CLASS = '\\p{Default_Ignorable_Code_Point}';
