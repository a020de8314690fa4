/**
 * Values written out in words, as a model reads them: numbers (`four two four two` is 4242,
 * `twelve thousand five hundred` is 12500, `forty-two` is 42), letters in the spelling alphabet
 * (`Golf Bravo` is GB), addresses (`mallory at evil dot
 * example`, `mallory [at] evil [dot] example`) and defanged URLs (`hxxps://evil[.]example`).
 * English words only.
 */

const UNITS: Readonly<Record<string, number>> = {
  zero: 0,
  oh: 0,
  nil: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const TENS: Readonly<Record<string, number>> = { twenty: 20, thirty: 30, forty: 40, fourty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90 };
const SCALES: Readonly<Record<string, number>> = { thousand: 1e3, million: 1e6, billion: 1e9 };
const NUMBER_WORD = `(?:${[...Object.keys(UNITS), ...Object.keys(TENS), 'hundred', ...Object.keys(SCALES)].join('|')})`;
/** A run of number words, joined by spaces, hyphens, commas or `and`. */
const NUMBER_RUN = new RegExp(`\\b${NUMBER_WORD}(?:[\\s,-]+(?:and\\s+)?${NUMBER_WORD})*\\b`, 'gi');

/** The numbers a run of number words says, in order: `forty two forty two` is [42, 42]; `four two` is [4, 2]. */
export function numbersInWords(run: string): number[] {
  const numbers: number[] = [];
  let total = 0;
  let group = 0;
  /** What the group ends with: nothing yet, a unit or teen, tens, or a scale. */
  let last: 'none' | 'unit' | 'tens' | 'hundred' | 'scale' = 'none';
  const flush = () => {
    if (last !== 'none') numbers.push(total + group);
    total = 0;
    group = 0;
    last = 'none';
  };
  for (const word of run.toLowerCase().match(/[a-z]+/g) ?? []) {
    if (word === 'and') continue;
    const unit = UNITS[word];
    const tens = TENS[word];
    const scale = SCALES[word];
    if (unit !== undefined) {
      // A unit after a unit or a teen starts another number; after tens it completes them (forty two), but for zero (twenty oh two).
      if (last === 'unit' || (last === 'tens' && (unit >= 10 || unit === 0))) flush();
      group += unit;
      last = 'unit';
    } else if (tens !== undefined) {
      if (last === 'unit' || last === 'tens') flush();
      group += tens;
      last = 'tens';
    } else if (word === 'hundred') {
      group = (group || 1) * 100;
      last = 'hundred';
    } else if (scale !== undefined) {
      total += (group || 1) * scale;
      group = 0;
      last = 'scale';
    }
  }
  flush();
  return numbers;
}

/** Text with number words as digits: each run becomes its numbers, joined by spaces (`4 2 4 2`); a comma ends a number (`thirty, eight` is 30 8). */
function digitsForWords(text: string): string {
  return text.replace(NUMBER_RUN, (run) => run.split(',').flatMap(numbersInWords).join(' '));
}

const AT = /\s*(?:[[({<]\s*(?:at|@)\s*[\])}>]|\s(?:at)\s)\s*/gi;
const DOT = /\s*(?:[[({<]\s*(?:dot|\.)\s*[\])}>]|\s(?:dot)\s)\s*/gi;

/** Text with `[at]`, ` at `, `(dot)`, ` dot `, `[.]` and `hxxp` read as what they stand for. */
function undefang(text: string): string {
  return text.replace(AT, '@').replace(DOT, '.').replace(/\bhxxp(s?)(?=:|\[:\])/gi, 'http$1').replace(/\[:\]/g, ':');
}

/** The spelling alphabet (Alfa, Bravo, ...), as people read codes and account numbers out. */
const PHONETIC = 'alfa alpha bravo charlie delta echo foxtrot golf hotel india juliett juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey x-ray xray yankee zulu'.split(' ');
const SPELLING = new RegExp(`\\b(?:${PHONETIC.join('|')})\\b(?:[\\s,]+\\b(?:${PHONETIC.join('|')}|\\d+)\\b)+`, 'gi');

/** Text with runs of spelling-alphabet words read as their letters: `Golf Bravo 2 9` is `GB 2 9`. */
function lettersForWords(text: string): string {
  return text.replace(SPELLING, (run) => run.replace(new RegExp(`\\b(?:${PHONETIC.join('|')})\\b`, 'gi'), (word) => word[0]!.toUpperCase()));
}

/** The text with values written out in words read as values, or undefined when it has none. */
export function spelledReading(text: string): string | undefined {
  const read = undefang(lettersForWords(digitsForWords(text)));
  return read === text ? undefined : read;
}
